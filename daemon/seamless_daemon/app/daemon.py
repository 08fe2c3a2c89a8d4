"""The daemon: complete-recording and streaming modes, control commands and status, wired to audio, runtime
and events.

Threads: the recorder drains the microphone (in complete mode); the worker runs translations one at a time;
while streaming, the streaming loop reads the microphone and translates inline; the worker and the streaming
loop both feed the watchdog through :class:`~.liveness.Liveness`; the player's own threads play results; the
control server has one thread per connection. The model (ONNX Runtime sessions) is shared.

Recording and streaming exclude each other: ``record start`` while streaming is refused, and so is starting
streaming while a recording is open or pending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from seamless_daemon import __version__
from seamless_daemon.app.archive import RecordingArchive
from seamless_daemon.app.liveness import STALE_WAKES, Liveness
from seamless_daemon.app.model_report import LoadTimes, bundle_info, model_status
from seamless_daemon.app.options import LiveOptions, OptionsHolder
from seamless_daemon.app.recorder import Recorder, Recording, RecordState
from seamless_daemon.app.stream_mode import StreamingMode, stream_settings
from seamless_daemon.app.streaming import StreamBusy, StreamRuntime
from seamless_daemon.app.worker import Worker, WorkerBusy
from seamless_daemon.audio.capture import Capture
from seamless_daemon.audio.playback import Player, Utterance
from seamless_daemon.audio.resample import resample
from seamless_daemon.config import Config
from seamless_daemon.control.commands import ArgumentError, CommandBusy, CommandRefused
from seamless_daemon.control.events import EventBus, EventSubscription
from seamless_daemon.control.wav import encode_pcm16_b64
from seamless_daemon.runtime.pipeline import TranslationError, TranslationResult, Translator
from seamless_daemon.service.metrics import Metrics
from seamless_daemon.service.watchdog import Watchdog

logger = logging.getLogger(__name__)

MAX_PENDING_JOBS = 4
SOCKET_TRANSLATE_TIMEOUT_S = 300.0
MS_PER_S = 1000.0
MIN_RECORDING_S = 0.1
RESTART_SECTIONS = ("bundle", "runtime", "audio", "control", "service")
WORKER_LOOP = "worker"
STREAMING = "streaming"
COMPLETE = "complete"


class Daemon:
    """Implements :class:`seamless_daemon.control.commands.DaemonControl`."""

    def __init__(
        self,
        config: Config,
        translator: Translator,
        capture: Capture,
        player: Player,
        events: EventBus,
        reload_config: Callable[[], Config],
        watchdog: Watchdog,
        stream_runtime: StreamRuntime,
        load_times: LoadTimes | None = None,
    ) -> None:
        self._config = config
        self._translator = translator
        self._load_times = load_times
        self._capture = capture
        self._player = player
        self._events = events
        self._reload_config = reload_config
        self._options = OptionsHolder(LiveOptions.from_config(config))
        self._liveness = Liveness(watchdog.kick, watchdog.interval_s * STALE_WAKES)
        self._worker = Worker(MAX_PENDING_JOBS, lambda: self._liveness.beat(WORKER_LOOP),
                              wake_s=watchdog.interval_s)
        self._recorder = Recorder(capture.read, translator.input_sample_rate, config.recording.max_seconds,
                                  self._on_limit)
        self._streaming = StreamingMode(stream_runtime, capture, player, events, self._recorder, self._liveness,
                                        watchdog.interval_s, self._on_stream_failure)
        self._metrics = Metrics()
        self._archive = _archive(config)
        self._started = time.monotonic()
        self._lock = threading.Lock()  # serialises record/set/reload commands

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()
        self._recorder.start()
        options = self._options.get()
        if options.mode == STREAMING:
            self._streaming.start(stream_settings(self._config.streaming, options.policy), options)

    def stop(self, timeout_s: float) -> bool:
        """Stop streaming, recording, playback and the worker. Returns False if a translation was still running."""
        try:
            self._streaming.stop(flush=False, timeout_s=timeout_s)
        except (StreamBusy, RuntimeError) as exc:
            logger.warning("streaming did not stop cleanly: %s", exc)
        self._recorder.close()
        self._player.cancel()
        finished = self._worker.stop(timeout_s)
        self._events.close()
        return finished

    @property
    def config(self) -> Config:
        return self._config

    @property
    def options(self) -> LiveOptions:
        return self._options.get()

    # --- audio callbacks (player threads) ----------------------------------------------------------------------

    def on_playback_start(self, utterance: Utterance) -> None:
        if self._config.audio.echo_guard:
            self._capture.enabled = False
        extra = self._streaming.playback_started(utterance)
        self._events.publish("playback_start", playback=utterance.id, duration_s=round(utterance.duration_s, 3),
                             **extra)
        if isinstance(utterance.tag, float):  # complete mode: when the recording stopped
            self._metrics.observe("stop_to_audio", time.monotonic() - utterance.tag)

    def on_playback_end(self, utterance: Utterance) -> None:
        self._events.publish("playback_end", playback=utterance.id, **self._streaming.piece_fields(utterance))
        self._streaming.playback_ended(utterance)
        if self._player.stats().queued:  # more speech waits: the echo guard stays closed
            return
        self._capture.enabled = True
        if self._recorder.activate_pending():
            self._publish_state()

    def on_audio_error(self, message: str) -> None:
        self._events.publish("error", message=message)

    # --- commands --------------------------------------------------------------------------------------------

    def record_start(self) -> dict[str, Any]:
        with self._lock:
            if self._streaming.running:
                raise CommandRefused("streaming is on; stop it first (seamlessctl stream stop)")
            if self._recorder.state is not RecordState.IDLE:
                raise CommandRefused(f"a recording is already {self._recorder.state.value}")
            playing = self._player.is_playing and self._config.audio.echo_guard
            if playing and self._config.recording.while_playing == "refuse":
                raise CommandRefused("translated speech is playing; try again when it ends")
            self._recorder.begin(pending=playing)
            if not playing:
                self._capture.discard()
        self._publish_state()
        return {"state": self._recorder.state.value, "max_seconds": self._config.recording.max_seconds}

    def record_stop(self) -> dict[str, Any]:
        with self._lock:
            if self._recorder.state is RecordState.IDLE:
                raise CommandRefused("no recording to stop")
            recording = self._recorder.finish()
        result = self._submit_recording(recording)
        self._publish_state()
        return result

    def record_cancel(self) -> dict[str, Any]:
        with self._lock:
            if self._recorder.state is RecordState.IDLE:
                raise CommandRefused("no recording to cancel")
            dropped = self._recorder.cancel()
        self._publish_state()
        return {"cancelled": True, "discarded_s": round(dropped, 3)}

    def set_options(
        self, target_lang: str | None, source_lang: str | None, speaker: int | None, mode: str | None,
        policy: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            current = self._options.get()
            self._check(target_lang or current.target_lang, current.speaker if speaker is None else speaker)
            if mode == STREAMING and not self._streaming.running and self._recorder.state is not RecordState.IDLE:
                raise CommandRefused(f"a recording is {self._recorder.state.value}; stop or cancel it before "
                                     "streaming")
            with _stream_errors():
                if mode == COMPLETE and self._streaming.running:
                    self._streaming.stop()  # the open utterance is finished in the current options
                options = self._options.update(target_lang=target_lang, source_lang=source_lang, speaker=speaker,
                                               mode=mode, policy=policy)
                self._follow(current, options, settings_changed=False)
        return self._announce(options)

    def stream_start(self) -> dict[str, Any]:
        return self.set_options(None, None, None, STREAMING)

    def stream_stop(self) -> dict[str, Any]:
        return self.set_options(None, None, None, COMPLETE)

    def swap_languages(self) -> dict[str, Any]:
        with self._lock:
            current = self._options.get()
            self._check(current.source_lang, current.speaker)
            with _stream_errors():
                options = self._options.swap()
                self._follow(current, options, settings_changed=False)
        return self._announce(options)

    def _follow(self, old: LiveOptions, new: LiveOptions, settings_changed: bool) -> None:
        """Make the streaming loop match the options (called with the lock held)."""
        settings = stream_settings(self._config.streaming, new.policy)
        if self._streaming.running and new.mode == COMPLETE:
            self._streaming.stop()
        elif self._streaming.running:
            self._streaming.retune(old, new, settings, settings_changed)
        elif new.mode == STREAMING:
            self._streaming.start(settings, new)

    def _announce(self, options: LiveOptions) -> dict[str, Any]:
        self._events.publish("options", **_options_dict(options))
        self._publish_state()
        return {**_options_dict(options), "state": self.state()}

    def _on_stream_failure(self, message: str) -> None:
        """The streaming loop ended on an error (its own thread): back to complete mode, without the lock."""
        self._options.update(mode=COMPLETE)
        self._events.publish("state", state="idle" if self._recorder.state is RecordState.IDLE else "recording")

    def reload(self) -> dict[str, Any]:
        config = self._reload_config()  # raises CommandRefused naming the bad key; the old config stays
        restart_keys = self.apply_config(config)
        return {"reloaded": True, "restart_required": restart_keys, **_options_dict(self._options.get())}

    def apply_config(self, config: Config) -> list[str]:
        """Take a validated new config. Translation options, mode, streaming settings, recording limits and the log
        level apply at once; returns the changed sections that only a restart applies (bundle, runtime, audio,
        control, service)."""
        old = self._config
        restart_keys = [key for key in RESTART_SECTIONS if getattr(old, key) != getattr(config, key)]
        for key in restart_keys:
            logger.warning("config %s changed: it takes effect when the daemon restarts", key)
        with self._lock:
            self._config = config
            current = self._options.get()
            self._options = OptionsHolder(LiveOptions.from_config(config))
            new = self._options.get()
            if new.mode == STREAMING and self._recorder.state is not RecordState.IDLE:
                logger.warning("config mode streaming: a recording is open; streaming starts at the next reload")
                new = self._options.update(mode=COMPLETE)
            self._recorder.set_max_seconds(config.recording.max_seconds)
            self._archive = _archive(config)
            with _stream_errors():
                self._follow(current, new, settings_changed=old.streaming != config.streaming)
        logging.getLogger().setLevel(config.logging.level.upper())
        self._announce(self._options.get())
        return restart_keys

    def translate_audio(
        self, samples: np.ndarray, sample_rate: int, target_lang: str | None, speaker: int | None
    ) -> dict[str, Any]:
        options = self._options.get()
        lang = target_lang or options.target_lang
        spk = options.speaker if speaker is None else speaker
        self._check(lang, spk)
        audio = resample(samples, sample_rate, self._translator.input_sample_rate)
        try:
            future = self._worker.submit("socket translation", lambda: self._translate(audio, lang, spk))
        except WorkerBusy as exc:
            self._metrics.incr("refused_busy")
            raise CommandBusy(f"translation queue is full ({exc})") from None
        result: TranslationResult = future.result(timeout=SOCKET_TRANSLATE_TIMEOUT_S)
        self._publish_text(result, lang, origin="socket")
        return {
            **_result_dict(result, lang),
            "audio_b64": encode_pcm16_b64(result.waveform),
        }

    def subscribe(self, queue_max: int) -> EventSubscription:
        return self._events.subscribe(queue_max)

    # --- translation jobs ------------------------------------------------------------------------------------

    def _on_limit(self, recording: Recording) -> None:
        self._metrics.incr("limit_stops")
        self._events.publish("recording_limit", seconds=round(recording.duration_s, 3))
        try:
            self._submit_recording(recording)
        except CommandRefused as exc:
            self._events.publish("error", message=str(exc))
        self._publish_state()

    def _submit_recording(self, recording: Recording) -> dict[str, Any]:
        self._metrics.incr("recordings")
        if recording.duration_s < MIN_RECORDING_S:
            self._metrics.incr("empty_recordings")
            raise CommandRefused(f"the recording holds only {recording.duration_s:.2f} s of audio; "
                                 "nothing to translate")
        options = self._options.get()
        stopped_at = time.monotonic()
        try:
            self._worker.submit("recording", lambda: self._translate_and_play(recording, options, stopped_at))
        except WorkerBusy as exc:
            self._metrics.incr("refused_busy")
            raise CommandBusy(f"translation queue is full ({exc}); the recording was discarded") from None
        return {"state": "translating", "recorded_s": round(recording.duration_s, 3)}

    def _translate_and_play(self, recording: Recording, options: LiveOptions, stopped_at: float) -> None:
        self._publish_state()
        if self._archive is not None:
            self._archive.save(recording.samples, recording.sample_rate)
        try:
            result = self._translate(recording.samples, options.target_lang, options.speaker)
        except Exception as exc:  # a failed translation is reported; the daemon keeps running
            self._metrics.incr("translation_errors")
            self._events.publish("error", message=f"translation failed: {exc}")
            raise
        self._metrics.incr("translations")
        self._metrics.observe("translate", result.timings_ms.get("total", 0.0) / MS_PER_S)
        self._publish_text(result, options.target_lang, origin="recording")
        if result.waveform.size:
            self._player.play(result.waveform, tag=stopped_at)
        self._publish_state()

    def _check(self, lang: str, speaker: int) -> None:
        try:
            self._translator.check_request(lang, speaker, self._config.translation.max_new_tokens)
        except TranslationError as exc:
            raise ArgumentError(str(exc)) from None

    def _translate(self, samples: np.ndarray, lang: str, speaker: int) -> TranslationResult:
        return self._translator.translate(samples, lang, speaker, self._config.translation.max_new_tokens)

    def _publish_text(self, result: TranslationResult, lang: str, origin: str) -> None:
        self._events.publish("text", origin=origin, **_result_dict(result, lang))
        self._events.publish("latency", origin=origin, timings_ms=result.timings_ms)

    # --- status ----------------------------------------------------------------------------------------------

    def state(self) -> str:
        if self._streaming.running:
            return "streaming"
        if self._recorder.state is RecordState.RECORDING:
            return "recording"
        if self._recorder.state is RecordState.PENDING:
            return "record_pending"
        if self._worker.busy or self._worker.pending:
            return "translating"
        if self._player.is_playing:
            return "playing"
        return "idle"

    def _publish_state(self) -> None:
        self._events.publish("state", state=self.state())

    def status(self) -> dict[str, Any]:
        cap, play = self._capture.stats(), self._player.stats()
        metrics = self._metrics.snapshot()
        return {
            "version": __version__,
            "state": self.state(),
            **_options_dict(self._options.get()),
            "bundle": bundle_info(self._translator),
            "provider": self._translator.provider,
            "model": model_status(self._translator, self._load_times),
            "languages": self._translator.languages,
            "speakers": self._translator.num_speakers,
            "audio": {
                "input": {"device": cap.device, "rate": cap.device_rate, "state": cap.state.value,
                          "overflows": cap.overflows, "dropped_samples": cap.dropped_samples,
                          "queued_samples": cap.queued_samples, "echo_guarded_samples": cap.gated_samples,
                          "losses": cap.losses, "reopens": cap.reopens, "last_error": cap.last_error},
                "output": {"device": play.device, "rate": play.device_rate, "state": play.state.value,
                           "queued": play.queued, "played": play.played,
                           "dropped_utterances": play.dropped_utterances, "underflows": play.underflows,
                           "losses": play.losses, "reopens": play.reopens, "last_error": play.last_error},
            },
            "recording": {"state": self._recorder.state.value, "recorded_s": round(self._recorder.recorded_s, 3),
                          "max_seconds": self._config.recording.max_seconds},
            "streaming": self._streaming.status(),
            "queues": {"jobs_pending": self._worker.pending, "jobs_max": MAX_PENDING_JOBS},
            "counters": metrics.counters,
            "latency_median_ms": {name: round(value, 1) for name, value in metrics.median_ms.items()},
            "uptime_s": round(time.monotonic() - self._started, 1),
        }


def _options_dict(options: LiveOptions) -> dict[str, Any]:
    return {"mode": options.mode, "source_lang": options.source_lang, "target_lang": options.target_lang,
            "speaker": options.speaker, "policy": options.policy}


@contextmanager
def _stream_errors() -> Iterator[None]:
    """The streaming loop's control errors as command outcomes."""
    try:
        yield
    except StreamBusy as exc:
        raise CommandBusy(str(exc)) from None
    except RuntimeError as exc:
        raise CommandRefused(str(exc)) from None


def _archive(config: Config) -> RecordingArchive | None:
    r = config.recording
    return RecordingArchive(r.save_dir, r.save_max_files) if r.save_dir is not None else None


def _result_dict(result: TranslationResult, lang: str) -> dict[str, Any]:
    return {
        "text": result.text,
        "text_ids": list(result.text_ids),
        "unit_ids": list(result.unit_ids),
        "target_lang": lang,
        "sample_rate": result.sample_rate,
        "duration_s": round(result.waveform.size / result.sample_rate, 3),
        "timings_ms": result.timings_ms,
    }
