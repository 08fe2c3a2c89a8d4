"""The interface every streaming policy offers, and the factory that builds one from settings.

A policy is fed audio blocks with the VAD probabilities of the 512-sample windows they complete, on a clock the
caller gives as a sample count (``now``: how much audio the source has produced so far, which is ahead of the
audio pushed when the caller is behind). It answers with :class:`~seamless_daemon.stream.events.Translate`
actions; the caller runs each one and hands the hypothesis back through :meth:`StreamPolicy.complete` (or reports
a failure through :meth:`StreamPolicy.fail`) before pushing more audio. Policies do no I/O and hold no model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from seamless_daemon.stream.events import HypothesisLike, PolicyOutput, Translate
from seamless_daemon.stream.settings import StreamSettings

logger = logging.getLogger(__name__)


class StreamStateError(RuntimeError):
    """A call the policy cannot accept in its current state (e.g. completing an unknown step)."""


@dataclass(frozen=True)
class PolicyResult:
    actions: list[Translate] = field(default_factory=list)
    outputs: list[PolicyOutput] = field(default_factory=list)


class StreamPolicy(Protocol):
    name: str

    @property
    def idle(self) -> bool:
        """No open utterance and no translation awaited: a stop or switch now loses nothing."""
        ...

    @property
    def skipped_steps(self) -> int:
        """Intermediate steps skipped since the policy was built."""
        ...

    def push(self, block: np.ndarray, probabilities: Sequence[float], now: int) -> PolicyResult: ...

    def complete(self, action: Translate, hypothesis: HypothesisLike, now: int) -> list[PolicyOutput]: ...

    def fail(self, action: Translate, message: str) -> list[PolicyOutput]: ...

    def flush(self, now: int) -> PolicyResult:
        """End whatever is open: the audio heard so far is translated (final), nothing is dropped."""
        ...


def make_policy(settings: StreamSettings) -> StreamPolicy:
    # Imported here: the policy modules import this one for the shared types.
    from seamless_daemon.stream.overlap import OverlapPolicy
    from seamless_daemon.stream.segmented import AgreementPolicy, VadPolicy

    if settings.policy == "overlap":
        return OverlapPolicy(settings)
    if settings.policy == "vad":
        return VadPolicy(settings)
    return AgreementPolicy(settings)
