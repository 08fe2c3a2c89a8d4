"""``seamless-daemon [--config FILE] [--check]``: start-up, signals, systemd notification, shutdown."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from seamless_daemon import __version__
from seamless_daemon.app.daemon import Daemon
from seamless_daemon.app.model_report import LoadTimes, bundle_info
from seamless_daemon.app.streaming import StreamRuntime
from seamless_daemon.audio.capture import Capture, CaptureSettings
from seamless_daemon.audio.devices import AudioDeviceError, resolve_device, skip_portaudio_teardown_at_exit
from seamless_daemon.audio.playback import Player, PlayerSettings, Utterance
from seamless_daemon.bundle import BundleError
from seamless_daemon.config import Config, ConfigError, load_config, reload_config
from seamless_daemon.control.commands import CommandRefused, CommandTable
from seamless_daemon.control.events import EventBus
from seamless_daemon.control.server import ControlServer, ControlServerError
from seamless_daemon.runtime.incremental import IncrementalTranslator
from seamless_daemon.runtime.pipeline import TranslationError, Translator
from seamless_daemon.runtime.providers import ProviderError
from seamless_daemon.runtime.sessions import RuntimeOptions
from seamless_daemon.runtime.vad import VadModel
from seamless_daemon.service.logging_setup import setup_logging
from seamless_daemon.service.notify import Notifier
from seamless_daemon.service.watchdog import Watchdog

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/seamless-daemon/config.yaml"
EX_OK = 0
EX_SOFTWARE = 70
EX_CONFIG = 78  # sysexits.h: configuration error
MAIN_LOOP_WAKE_S = 0.5


@dataclass(frozen=True)
class Services:
    notifier: Notifier
    watchdog: Watchdog


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="seamless-daemon",
        description="Speech-to-speech interpreter daemon. `seamless-daemon translate --help` translates a file.",
    )
    parser.add_argument("--config", default=os.environ.get("SEAMLESS_DAEMON_CONFIG", DEFAULT_CONFIG),
                        help=f"YAML config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--check", action="store_true", help="validate config, bundle and audio devices, then exit")
    parser.add_argument("--version", action="version", version=f"seamless-daemon {__version__}")
    return parser.parse_args(argv)


def _fail(message: str, code: int) -> int:
    print(f"seamless-daemon: {message}", file=sys.stderr)
    return code


def _capture_settings(config: Config) -> CaptureSettings:
    a = config.audio
    return CaptureSettings(device=a.input_device, samplerate=a.input_sample_rate, block_ms=a.block_ms,
                           queue_s=a.queue_seconds, backoff_initial_s=a.reopen_backoff_initial_s,
                           backoff_max_s=a.reopen_backoff_max_s)


def _player_settings(config: Config) -> PlayerSettings:
    a = config.audio
    return PlayerSettings(device=a.output_device, samplerate=a.output_sample_rate, block_ms=a.block_ms,
                          backoff_initial_s=a.reopen_backoff_initial_s, backoff_max_s=a.reopen_backoff_max_s)


def load_stream_runtime(config: Config, translator: Translator) -> StreamRuntime:
    """Streaming's model pieces: the translator's own sessions, plus the bundle's VAD."""
    return StreamRuntime(backend=IncrementalTranslator(translator.bundle, translator.sessions),
                         vad=VadModel.open(translator.bundle, RuntimeOptions.from_config(config.runtime)))


def load_translator(config: Config) -> Translator:
    """Open the configured bundle and check the configured language and speaker against it."""
    options = RuntimeOptions.from_config(config.runtime)
    translator = Translator.open(config.bundle, options)
    t = config.translation
    try:
        translator.check_request(t.target_lang, t.speaker, t.max_new_tokens)
    except TranslationError as exc:
        raise ConfigError("translation", str(exc)) from None
    return translator


def check(config: Config) -> int:
    """``--check``: the config parsed; now the bundle loads and the audio devices exist."""
    translator = load_translator(config)
    inp = resolve_device(config.audio.input_device, "input", "audio.input_device")
    out = resolve_device(config.audio.output_device, "output", "audio.output_device")
    print(f"config ok: bundle {config.bundle} ({bundle_info(translator)['precision']}, "
          f"provider {translator.provider}); "
          f"input {inp.name!r}; output {out.name!r}; target {config.translation.target_lang}")
    return EX_OK


class Runner:
    """Owns the running daemon between READY=1 and STOPPING=1."""

    def __init__(self, config_path: str, config: Config, translator: Translator, stream_runtime: StreamRuntime,
                 services: Services, load_times: LoadTimes | None = None) -> None:
        self._config_path = config_path
        self._services = services
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._events = EventBus()
        self._capture = Capture(_capture_settings(config), on_error=self._on_audio_error)
        self._player = Player(_player_settings(config), on_start=self._on_playback_start,
                              on_end=self._on_playback_end, on_error=self._on_audio_error)
        self._daemon = Daemon(config, translator, self._capture, self._player, self._events,
                              reload_config=self._read_config, watchdog=services.watchdog,
                              stream_runtime=stream_runtime, load_times=load_times)
        self._server = ControlServer(CommandTable(self._daemon, config.recording.max_seconds), config.control)

    # The audio threads call these; they forward to the daemon, which exists by the time audio starts.
    def _on_audio_error(self, message: str) -> None:
        self._daemon.on_audio_error(message)

    def _on_playback_start(self, utterance: Utterance) -> None:
        self._daemon.on_playback_start(utterance)

    def _on_playback_end(self, utterance: Utterance) -> None:
        self._daemon.on_playback_end(utterance)

    def _read_config(self) -> Config:
        result = reload_config(self._config_path)
        if result.error is not None:
            logger.error("reload refused, keeping the running config: %s", result.error)
            self._events.publish("error", message=f"reload refused: {result.error}")
            raise CommandRefused(f"reload refused, keeping the running config: {result.error}")
        return result.config

    def start(self) -> None:
        self._player.start()
        self._capture.start()
        self._daemon.start()
        self._server.start()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload_requested.set())
        notifier = self._services.notifier
        notifier.ready()
        notifier.status(self._status_line())
        status = EX_OK
        while not self._stop.wait(MAIN_LOOP_WAKE_S):
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self._reload()
            if self._audio_wedged():
                status = EX_SOFTWARE
                break
        self.shutdown()
        return status

    def _audio_wedged(self) -> bool:
        """A dead PortAudio stream that never closed keeps a thread spinning; only a new process reclaims it,
        so the daemon exits with a failure and the service manager (Restart=on-failure) starts it again."""
        abandoned = self._capture.stats().abandoned_streams + self._player.stats().abandoned_streams
        if abandoned:
            logger.error("%d audio stream(s) wedged inside PortAudio after a device loss; exiting for a restart",
                         abandoned)
        return abandoned > 0

    def _reload(self) -> None:
        notifier = self._services.notifier
        notifier.reloading()
        try:
            self._daemon.reload()
            logger.info("config reloaded from %s", self._config_path)
        except CommandRefused:
            pass  # already logged and published by _read_config
        notifier.ready()
        notifier.status(self._status_line())

    def _status_line(self) -> str:
        o = self._daemon.options
        policy = f" ({o.policy})" if o.mode == "streaming" else ""
        return f"{o.mode} mode{policy}, {o.source_lang}->{o.target_lang}, speaker {o.speaker}"

    def shutdown(self) -> None:
        self._services.notifier.stopping()
        timeout = self._daemon.config.service.stop_timeout_s
        self._server.stop()
        finished = self._daemon.stop(timeout / 2)
        self._capture.close()
        self._player.close()
        if self._capture.stats().abandoned_streams or self._player.stats().abandoned_streams:
            skip_portaudio_teardown_at_exit()
        if not finished:
            logger.warning("a translation was still running at shutdown; exiting without waiting for it")
        logger.info("stopped")


def run(config_path: str, config: Config) -> int:
    notifier = Notifier()
    notifier.status("loading the bundle")
    began = time.monotonic()
    translator = load_translator(config)
    stream_runtime = load_stream_runtime(config, translator)
    loaded = time.monotonic()
    notifier.status("warming up the model")
    translator.warmup()
    load_times = LoadTimes(load_s=loaded - began, warmup_s=time.monotonic() - loaded)
    logger.info("model loaded in %.2f s, warmed up in %.2f s", load_times.load_s, load_times.warmup_s)
    watchdog = Watchdog(notifier=notifier)
    runner = Runner(config_path, config, translator, stream_runtime, Services(notifier=notifier, watchdog=watchdog),
                    load_times)
    runner.start()
    logger.info("ready: %s", runner._status_line())
    return runner.run()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        return _fail(str(exc), EX_CONFIG)
    setup_logging(config.logging.level)
    try:
        if args.check:
            return check(config)
        return run(args.config, config)
    except (ConfigError, BundleError, ProviderError, AudioDeviceError, ControlServerError) as exc:
        logger.error("%s", exc)
        return _fail(str(exc), EX_CONFIG)
