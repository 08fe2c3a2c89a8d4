"""A streaming simulator: a recording fed through a real policy, VAD and backend on a virtual clock.

Audio sample ``i`` "arrives" at virtual time ``i`` (samples at 16 kHz). The session works through the audio that
has arrived, one block at a time; every backend call advances the virtual clock by its cost, so while a
translation runs, audio piles up exactly as it would behind a live microphone, and the policy sees itself behind
the clock (and skips intermediate steps) exactly when a live one would. When it has caught up, the clock jumps to
the next block's arrival. Nothing sleeps, so the simulation runs faster than real time.

Costs (:class:`CostModel`): ``measured`` charges each call the wall time it really took (scaled by ``scale``;
faithful, but varies run to run), ``fixed`` charges ``step_s`` per hypothesis and ``speak_s`` per synthesis plus
``per_audio_s`` per second of audio handed to the call (deterministic: what the tests use).

Played audio is modelled as one serial output queue: each piece starts when it is ready and the previous piece
has finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seamless_daemon.stream.events import Commit, Speak, Stamped
from seamless_daemon.stream.policy import StreamPolicy
from seamless_daemon.stream.session import SpeechLike, StreamSession, Target, TranslationBackend, VadFeed
from seamless_daemon.stream.settings import SAMPLE_RATE

logger = logging.getLogger(__name__)

DEFAULT_BLOCK = 320  # 20 ms, the daemon's capture block


@dataclass(frozen=True)
class CostModel:
    kind: str = "fixed"  # "fixed" or "measured"
    step_s: float = 0.05
    speak_s: float = 0.05
    per_audio_s: float = 0.02  # extra cost per second of audio in the call (fixed model)
    scale: float = 1.0  # multiplies measured wall time (measured model)

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "measured"):
            raise ValueError(f"cost model must be 'fixed' or 'measured', got {self.kind!r}")

    def charge(self, wall_s: float, base_s: float, audio_samples: int) -> int:
        seconds = wall_s * self.scale if self.kind == "measured" else base_s + self.per_audio_s * (
            audio_samples / SAMPLE_RATE)
        return round(seconds * SAMPLE_RATE)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, samples: int) -> None:
        self.now += max(0, samples)


class TimedBackend:
    """Wraps a backend: every call advances the virtual clock by its cost and adds up the wall time."""

    def __init__(self, inner: TranslationBackend, clock: VirtualClock, cost: CostModel) -> None:
        self.inner = inner
        self.clock = clock
        self.cost = cost
        self.wall_s = 0.0
        self.calls = 0

    def _timed(self, work: Callable[[], Any], base_s: float, audio_samples: int) -> Any:
        began = time.perf_counter()
        value = work()
        wall = time.perf_counter() - began
        self.wall_s += wall
        self.calls += 1
        self.clock.advance(self.cost.charge(wall, base_s, audio_samples))
        return value

    def hypothesize(self, waveform: np.ndarray, tgt_lang: str, prefix_ids: Sequence[int] = (),
                    max_new_tokens: int | None = None) -> Any:
        return self._timed(lambda: self.inner.hypothesize(waveform, tgt_lang, prefix_ids, max_new_tokens),
                           self.cost.step_s, int(np.asarray(waveform).size))

    def speak(self, hypothesis: Any, start: int, end: int, speaker: int = 0) -> SpeechLike:
        return self._timed(lambda: self.inner.speak(hypothesis, start, end, speaker), self.cost.speak_s, 0)


@dataclass(frozen=True)
class PlayedPiece:
    speak: Speak
    start: int  # virtual time the piece starts playing
    end: int


@dataclass
class SimulationResult:
    stamped: list[Stamped]
    played: list[PlayedPiece]
    audio_samples: int
    finished_at: int  # virtual time the last output was ready
    wall_s: float  # real wall time spent in the backend
    charged_samples: int  # virtual time charged to the backend
    max_backlog: int  # most audio waiting to be pushed at once
    skipped_steps: int
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def commits(self) -> list[Commit]:
        return [item.output for item in self.stamped if isinstance(item.output, Commit)]

    def commit_times(self) -> list[tuple[int, Commit]]:
        return [(item.at, item.output) for item in self.stamped if isinstance(item.output, Commit)]


def play_serially(stamped: Sequence[Stamped]) -> list[PlayedPiece]:
    played: list[PlayedPiece] = []
    free_at = 0
    for item in stamped:
        if isinstance(item.output, Speak):
            start = max(item.output.ready_at, free_at)
            free_at = start + item.output.duration_samples
            played.append(PlayedPiece(item.output, start, free_at))
    return played


def simulate(audio: np.ndarray, policy: StreamPolicy, backend: TranslationBackend, vad: VadFeed | None,
             target: Target, cost: CostModel | None = None, block: int = DEFAULT_BLOCK) -> SimulationResult:
    """Run ``audio`` through ``policy`` on a virtual clock; flush at the end of the audio."""
    clock = VirtualClock()
    timed = TimedBackend(backend, clock, cost if cost is not None else CostModel())
    session = StreamSession(policy, timed, vad, clock, target)
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    stamped: list[Stamped] = []
    position = 0
    max_backlog = 0
    while position < samples.size:
        next_end = min(samples.size, position + block)
        clock.now = max(clock.now, next_end)  # idle until the next block has arrived
        arrived = min(samples.size, clock.now)
        max_backlog = max(max_backlog, arrived - position)
        stamped.extend(session.push(samples[position:next_end]))
        position = next_end
    stamped.extend(session.flush())
    counters = session.counters
    return SimulationResult(
        stamped=stamped, played=play_serially(stamped), audio_samples=samples.size, finished_at=clock.now,
        wall_s=timed.wall_s, charged_samples=sum(counters.processing_samples.values()), max_backlog=max_backlog,
        skipped_steps=policy.skipped_steps,
        counters={"steps": counters.steps, "failures": counters.failures,
                  "dropped_samples": counters.dropped_samples, "backend_calls": timed.calls},
    )
