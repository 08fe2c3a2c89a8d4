"""VAD segmentation on synthetic probability sequences (one value per 512-sample window)."""

from __future__ import annotations

from seamless_daemon.stream.segmenter import SegmentEnd, Segmenter, SegmentStart
from seamless_daemon.stream.settings import VAD_WINDOW, SegmenterSettings, seconds_to_windows

SETTINGS = SegmenterSettings(threshold=0.5, release_margin=0.15, min_silence_s=0.5, min_speech_s=0.25,
                             max_utterance_s=4.0, pre_roll_s=0.0, post_roll_s=0.0)


def run(probabilities: list[float], settings: SegmenterSettings = SETTINGS) -> list[tuple[str, int, bool]]:
    segmenter = Segmenter(settings)
    events = []
    for probability in probabilities:
        for event in segmenter.feed(probability):
            if isinstance(event, SegmentStart):
                events.append(("start", event.sample // VAD_WINDOW, False))
            elif isinstance(event, SegmentEnd):
                events.append(("end", event.sample // VAD_WINDOW, event.forced))
    return events


def windows(seconds: float) -> int:
    return seconds_to_windows(seconds)


def test_one_utterance_between_silences() -> None:
    silence, speech = windows(1.0), windows(2.0)
    events = run([0.0] * silence + [0.9] * speech + [0.0] * windows(1.0))
    assert events == [("start", silence, False), ("end", silence + speech, False)]


def test_short_burst_is_ignored() -> None:
    burst = windows(0.25) - 1
    assert run([0.0] * 10 + [0.9] * burst + [0.0] * 40) == []


def test_short_pause_does_not_end_the_utterance_and_hysteresis_holds_speech() -> None:
    pause = windows(0.5) - 2
    # 0.4 is below the threshold but above threshold - margin: still speech once the utterance is on.
    probabilities = [0.9] * 20 + [0.4] * 30 + [0.0] * pause + [0.9] * 20 + [0.0] * 40
    events = run(probabilities)
    assert [kind for kind, _, _ in events] == ["start", "end"]
    assert events[1][1] == 20 + 30 + pause + 20


def test_release_threshold_is_not_an_onset() -> None:
    assert run([0.4] * 100) == []


def test_padding_extends_the_utterance_on_both_sides() -> None:
    settings = SegmenterSettings(min_silence_s=0.5, min_speech_s=0.25, max_utterance_s=4.0,
                                 pre_roll_s=3 * VAD_WINDOW / 16000, post_roll_s=2 * VAD_WINDOW / 16000)
    events = run([0.0] * 30 + [0.9] * 40 + [0.0] * 40, settings)
    assert events == [("start", 27, False), ("end", 72, False)]


def test_long_speech_is_cut_at_the_quietest_window_and_goes_on() -> None:
    length = windows(4.0)
    speech = [0.95] * (3 * length // 2)
    dip = int(length * 0.8)
    speech[dip] = 0.6  # quietest point in the last half of the first utterance
    speech[length // 4] = 0.55  # quieter, but outside the search range
    events = run([0.0] * 5 + speech + [0.0] * 40)
    assert events[0] == ("start", 5, False)
    assert events[1] == ("end", 5 + dip + 1, True)
    assert events[2] == ("start", 5 + dip + 1, False)
    assert events[3][0] == "end" and not events[3][2]
    # Every utterance respects the maximum length.
    assert events[1][1] - events[0][1] <= length


def test_two_utterances() -> None:
    gap = windows(1.0)
    events = run([0.9] * 30 + [0.0] * gap + [0.9] * 30 + [0.0] * gap)
    assert [(kind, sample) for kind, sample, _ in events] == [
        ("start", 0), ("end", 30), ("start", 30 + gap), ("end", 60 + gap)]
