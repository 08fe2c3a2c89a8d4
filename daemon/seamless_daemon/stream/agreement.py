"""LocalAgreement-2 on token-id hypotheses of one growing utterance.

Each hypothesis is decoded with the committed tokens forced as its prefix, so it always starts with them. After a
new hypothesis, the tokens on which it and the previous hypothesis agree (their longest common prefix) become
committed — trimmed back until a word ends there in both hypotheses, so a word is never committed in halves —
and the committed prefix only grows. At the end of the utterance the final hypothesis' remaining tokens are
committed. Every token position is committed exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from seamless_daemon.stream.settings import SPACE

logger = logging.getLogger(__name__)


class HypothesisMismatch(ValueError):
    """A hypothesis that does not start with the committed prefix it was asked to keep."""


@dataclass(frozen=True)
class AgreementStep:
    """Outcome of one hypothesis: newly committed tokens (may be empty) and the unstable rest."""

    start_index: int
    new_ids: tuple[int, ...]
    new_pieces: tuple[str, ...]
    unstable_ids: tuple[int, ...]
    unstable_pieces: tuple[str, ...]


def starts_word(piece: str) -> bool:
    return piece.startswith(SPACE)


@dataclass(frozen=True)
class _Hypothesis:
    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    ended_on_eos: bool

    def word_ends_before(self, position: int) -> bool:
        """True when a word of this hypothesis ends right before ``position``."""
        if position < len(self.ids):
            return starts_word(self.pieces[position])
        return position == len(self.ids) and self.ended_on_eos


def common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    length = 0
    for left, right in zip(first, second):
        if left != right:
            break
        length += 1
    return length


class LocalAgreement:
    """Committed prefix of one utterance; feed hypotheses in order, then :meth:`finish` (or :meth:`close`)."""

    def __init__(self, word_boundary: bool = True) -> None:
        self.word_boundary = word_boundary
        self._committed: list[int] = []
        self._committed_pieces: list[str] = []
        self._previous: _Hypothesis | None = None
        self._finished = False

    @property
    def committed(self) -> tuple[int, ...]:
        return tuple(self._committed)

    @property
    def committed_pieces(self) -> tuple[str, ...]:
        return tuple(self._committed_pieces)

    @property
    def finished(self) -> bool:
        return self._finished

    def _check(self, ids: Sequence[int], pieces: Sequence[str]) -> None:
        if self._finished:
            raise HypothesisMismatch("the utterance is already finished")
        if len(ids) != len(pieces):
            raise HypothesisMismatch(f"{len(ids)} token ids but {len(pieces)} pieces")
        if tuple(int(token) for token in ids[: len(self._committed)]) != tuple(self._committed):
            raise HypothesisMismatch("the hypothesis does not start with the committed prefix")

    def _boundary(self, hypotheses: Sequence[_Hypothesis], agreed: int) -> int:
        """Commit up to ``agreed`` tokens, backed off until a word ends there in every hypothesis compared."""
        if not self.word_boundary:
            return agreed
        for end in range(agreed, len(self._committed), -1):
            if all(hypothesis.word_ends_before(end) for hypothesis in hypotheses):
                return end
        return len(self._committed)

    def _take(self, hypothesis: _Hypothesis, end: int) -> AgreementStep:
        start = len(self._committed)
        new_ids = hypothesis.ids[start:end]
        new_pieces = hypothesis.pieces[start:end]
        self._committed.extend(new_ids)
        self._committed_pieces.extend(new_pieces)
        return AgreementStep(
            start_index=start, new_ids=new_ids, new_pieces=new_pieces,
            unstable_ids=hypothesis.ids[end:], unstable_pieces=hypothesis.pieces[end:],
        )

    def update(self, ids: Sequence[int], pieces: Sequence[str], ended_on_eos: bool) -> AgreementStep:
        """An intermediate hypothesis: commit what it shares with the previous one."""
        self._check(ids, pieces)
        current = _Hypothesis(tuple(int(token) for token in ids), tuple(pieces), ended_on_eos)
        end = len(self._committed)
        if self._previous is not None:
            agreed = max(end, common_prefix_length(self._previous.ids, current.ids))
            end = self._boundary((self._previous, current), agreed)
        self._previous = current
        return self._take(current, end)

    def finish(self, ids: Sequence[int], pieces: Sequence[str]) -> AgreementStep:
        """The final hypothesis of the utterance: commit everything not yet committed."""
        self._check(ids, pieces)
        step = self._take(_Hypothesis(tuple(int(token) for token in ids), tuple(pieces), True), len(ids))
        self.close()
        return step

    def close(self) -> None:
        """End the utterance; nothing more is committed (also when its final translation failed)."""
        self._finished = True
        self._previous = None
