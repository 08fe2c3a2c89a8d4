"""LocalAgreement-2 on hand-written hypothesis sequences."""

from __future__ import annotations

import pytest
from seamless_daemon.stream.agreement import HypothesisMismatch, LocalAgreement

W = "▁"


def test_commits_the_prefix_two_hypotheses_agree_on_up_to_a_word_end() -> None:
    agreement = LocalAgreement()
    first = agreement.update([10, 11, 12], [f"{W}un", f"{W}deux", f"{W}tr"], ended_on_eos=False)
    assert first.new_ids == ()  # one hypothesis alone commits nothing
    second = agreement.update([10, 11, 13, 14], [f"{W}un", f"{W}deux", f"{W}trois", f"{W}quatre"], False)
    # Both agree on "un deux" and a new word starts after it in both.
    assert second.new_ids == (10, 11)
    assert second.start_index == 0
    assert second.unstable_ids == (13, 14)
    assert agreement.committed == (10, 11)


def test_never_commits_half_a_word() -> None:
    agreement = LocalAgreement()
    agreement.update([20, 21, 22], [f"{W}dix", "-", "sept"], False)
    step = agreement.update([20, 21, 23], [f"{W}dix", "-", "neuf"], False)
    # "▁dix -" agree, but the word goes on with different pieces: nothing is committed.
    assert step.new_ids == ()
    step = agreement.update([20, 21, 23, 30], [f"{W}dix", "-", "neuf", f"{W}vert"], False)
    assert step.new_ids == ()  # previous hypothesis ended (no eos) right after "neuf": the word may go on
    step = agreement.update([20, 21, 23, 30, 31], [f"{W}dix", "-", "neuf", f"{W}vert", f"{W}bleu"], False)
    assert step.new_ids == (20, 21, 23)


def test_a_word_end_on_eos_in_both_hypotheses_is_committed() -> None:
    agreement = LocalAgreement()
    agreement.update([5, 6], [f"{W}chat", f"{W}noir"], ended_on_eos=True)
    step = agreement.update([5, 6], [f"{W}chat", f"{W}noir"], ended_on_eos=True)
    assert step.new_ids == (5, 6)


def test_committed_prefix_only_grows_and_every_position_is_committed_once() -> None:
    hypotheses = [
        [1, 2], [1, 2, 3], [1, 2, 4, 5], [1, 2, 4, 5, 6], [1, 2, 4, 5, 6, 7], [1, 2, 4, 5, 6, 7, 8],
    ]
    agreement = LocalAgreement(word_boundary=False)
    positions: list[int] = []
    committed: list[int] = []
    for ids in hypotheses:
        if tuple(ids[: len(agreement.committed)]) != agreement.committed:
            continue  # a forced-prefix decoder never produces these; see the mismatch test
        before = agreement.committed
        step = agreement.update(ids, [f"{W}x"] * len(ids), False)
        assert agreement.committed[: len(before)] == before
        positions.extend(range(step.start_index, step.start_index + len(step.new_ids)))
        committed.extend(step.new_ids)
    final = [1, 2, 4, 5, 6, 7, 8, 9]
    step = agreement.finish(final, [f"{W}x"] * len(final))
    positions.extend(range(step.start_index, step.start_index + len(step.new_ids)))
    committed.extend(step.new_ids)
    assert positions == list(range(len(final)))
    assert committed == final


def test_a_hypothesis_that_drops_the_committed_prefix_is_refused() -> None:
    agreement = LocalAgreement()
    agreement.update([1, 2, 3], [f"{W}a", f"{W}b", f"{W}c"], False)
    agreement.update([1, 2, 3], [f"{W}a", f"{W}b", f"{W}c"], False)
    assert agreement.committed == (1, 2)
    with pytest.raises(HypothesisMismatch):
        agreement.update([9, 2, 3], [f"{W}z", f"{W}b", f"{W}c"], False)


def test_nothing_is_accepted_after_the_end() -> None:
    agreement = LocalAgreement()
    agreement.finish([1], [f"{W}a"])
    with pytest.raises(HypothesisMismatch):
        agreement.update([1, 2], [f"{W}a", f"{W}b"], False)
