"""Typed actions a policy asks for, hypotheses handed back to it, and the outputs it produces.

All positions are sample counts on the stream's own clock (sample 0 is the first sample pushed), never wall
time. Token positions (``start_index``) count generated tokens of one utterance, the prompt left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from seamless_daemon.stream.settings import SPACE

logger = logging.getLogger(__name__)


class HypothesisLike(Protocol):
    """What a translation backend returns for one audio stretch (structural: any object with these fields)."""

    @property
    def token_ids(self) -> Sequence[int]: ...  # generated tokens, prompt and eos left out

    @property
    def pieces(self) -> Sequence[str]: ...  # subword of each token (SentencePiece, '▁' starts a word)

    @property
    def ended_on_eos(self) -> bool: ...


def pieces_text(pieces: Sequence[str]) -> str:
    """Readable text of subwords: joined, word-start markers turned into spaces."""
    return "".join(pieces).replace(SPACE, " ").strip()


@dataclass(frozen=True)
class Translate:
    """Translate ``audio`` (the utterance from ``source_start`` to ``source_end``), forcing ``prefix_ids``."""

    step_id: int
    utterance_id: int
    audio: np.ndarray
    source_start: int
    source_end: int
    final: bool
    prefix_ids: tuple[int, ...] = ()
    max_new_tokens: int | None = None


Action = Translate


@dataclass(frozen=True)
class UtteranceStart:
    utterance_id: int
    start_sample: int  # first sample of the utterance's audio (speech onset minus padding)


@dataclass(frozen=True)
class Partial:
    """The latest hypothesis beyond the committed prefix: may still change."""

    utterance_id: int
    text: str
    token_ids: tuple[int, ...]


@dataclass(frozen=True)
class Commit:
    """Newly committed tokens of an utterance: positions ``start_index`` .. ``start_index + len(token_ids)``,
    right after the previous commit of the same utterance (commits never overlap)."""

    utterance_id: int
    step_id: int
    text: str
    token_ids: tuple[int, ...]
    start_index: int
    source_start: int
    source_end: int
    final: bool

    @property
    def end_index(self) -> int:
        return self.start_index + len(self.token_ids)


@dataclass(frozen=True)
class UtteranceEnd:
    utterance_id: int
    start_sample: int
    end_sample: int  # end of the utterance's audio
    text: str  # everything committed for the utterance
    token_ids: tuple[int, ...]
    steps: int  # translations run for the utterance
    skipped_steps: int  # intermediate steps skipped because processing was behind
    forced_cut: bool = False  # cut at the maximum length rather than at a silence
    failed: bool = False  # the final translation failed; the utterance keeps what was committed before


@dataclass(frozen=True)
class Dropped:
    """Audio the policy could not translate (it fell out of the bounded history before its turn)."""

    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class Throttled:
    """A translation result not spoken: it came less than the minimum gap after the previous output."""

    utterance_id: int
    token_ids: tuple[int, ...]


PolicyOutput = UtteranceStart | Partial | Commit | UtteranceEnd | Dropped | Throttled


@dataclass(frozen=True)
class Speak:
    """Synthesised speech for one commit, produced by the stream session (not by a policy)."""

    utterance_id: int
    commit: Commit
    waveform: np.ndarray
    sample_rate: int
    ready_at: int  # stream clock when the audio was ready to play

    @property
    def duration_samples(self) -> int:
        return int(self.waveform.size)


@dataclass(frozen=True)
class StreamFailure:
    """A translation or synthesis step that raised; the stream goes on."""

    utterance_id: int
    step_id: int
    final: bool
    message: str


@dataclass(frozen=True)
class Stamped:
    """An output with the stream clock at which it was produced."""

    at: int
    output: PolicyOutput | Speak | StreamFailure
    extra: dict[str, float] = field(default_factory=dict)
