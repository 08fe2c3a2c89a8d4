"""Streaming simulator bench: each policy side by side on the same multi-sentence recordings.

    python bench/bench_streaming.py --bundle BUNDLE --out bench/results [--recordings 3] [--sentences 5]
                                    [--lang fra] [--cost measured|fixed] [--scale 1]

Feeds espeak-ng recordings (bench/make_speech.py: toy-vocabulary sentences with 1.0–1.6 s pauses) through the
real policy, the bundle's Silero VAD and the ONNX Runtime pipeline on a virtual clock
(``seamless_daemon.stream.simulator``): deterministic in its decisions when ``--cost fixed``, faithful to this
machine's speed with ``--cost measured`` (the default: each call is charged the wall time it took). Reports per
policy: StartOffset and EndOffset per sentence (true sentence boundaries, modelled serial playback), processing
RTF, output speech duration, tokens spoken more than once, skipped steps, and the WER of the committed text vs
the word-by-word reference next to the WER of translating each sentence offline in complete mode.
Writes ``streaming.json`` and ``streaming.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from make_speech import SAMPLE_RATE, Recording, make_recording
from seamless_daemon.bundle import load_bundle
from seamless_daemon.runtime.incremental import IncrementalTranslator
from seamless_daemon.runtime.pipeline import Translator
from seamless_daemon.runtime.sessions import RuntimeOptions
from seamless_daemon.runtime.vad import VadModel, VadState
from seamless_daemon.stream.events import Commit
from seamless_daemon.stream.policy import make_policy
from seamless_daemon.stream.session import Target
from seamless_daemon.stream.settings import POLICIES, DecodeBudget, StreamSettings
from seamless_daemon.stream.simulator import CostModel, SimulationResult, simulate
from seamless_export.quality import word_edits

LONG_SENTENCE_S = 3.0
OFFLINE_PAD_S = 0.1  # audio kept around each true sentence for the offline reference run


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference words)."""
    return word_edits(reference, hypothesis), len(reference.split())


def repeated_tokens(commits: list[Commit]) -> int:
    """Tokens a spoken piece repeats from the end of the piece before it (longest suffix = prefix match), counted
    where the two pieces come from different utterances translating overlapping audio. Within one utterance a
    repeat is a position committed twice, counted separately (``recommitted_tokens``): a word the speaker said
    twice is not a repeat."""
    total = 0
    for before, after in itertools.pairwise(commits):
        if before.utterance_id == after.utterance_id or not overlaps(after, before.source_start, before.source_end):
            continue
        a, b = before.token_ids, after.token_ids
        total += max((k for k in range(1, min(len(a), len(b)) + 1) if a[-k:] == b[:k]), default=0)
    return total


def overlaps(commit: Commit, start: int, end: int) -> bool:
    return commit.source_start < end and commit.source_end > start


@dataclass(frozen=True)
class PolicyFigures:
    policy: str
    wer: float
    start_offset_s: float | None  # median over sentences
    end_offset_s: float | None
    rtf: float  # charged processing time / audio duration
    wall_rtf: float
    output_speech_s: float
    repeated_tokens: int
    recommitted_tokens: int  # token positions committed twice within an utterance (must be 0)
    skipped_steps: int
    first_commit_before_end: float | None  # share of sentences > 3 s
    long_sentences: int
    steps: int


def evaluate(policy: str, results: list[SimulationResult], recordings: list[Recording], lang: str) -> PolicyFigures:
    errors = words = repeats = recommitted = skipped = steps = 0
    starts: list[float] = []
    ends: list[float] = []
    early: list[bool] = []
    charged = wall = audio = output = 0.0
    for result, recording in zip(results, recordings):
        timed = sorted(result.commit_times(), key=lambda item: item[0])
        hypothesis = " ".join(commit.text for _, commit in timed if commit.text)
        e, n = word_errors(recording.reference(lang), hypothesis)
        errors, words = errors + e, words + n
        seen: dict[int, set[int]] = {}
        for _, commit in timed:
            positions = seen.setdefault(commit.utterance_id, set())
            span = set(range(commit.start_index, commit.end_index))
            recommitted += len(positions & span)
            positions |= span
        repeats += repeated_tokens([piece.speak.commit for piece in result.played])
        for sentence in recording.sentences:
            pieces = [p for p in result.played if overlaps(p.speak.commit, sentence.start, sentence.end)]
            if pieces:
                starts.append((min(p.start for p in pieces) - sentence.start) / SAMPLE_RATE)
                ends.append((max(p.end for p in pieces) - sentence.end) / SAMPLE_RATE)
            if sentence.duration_s > LONG_SENTENCE_S:
                firsts = [at for at, commit in timed if overlaps(commit, sentence.start, sentence.end)]
                early.append(bool(firsts) and min(firsts) < sentence.end)
        charged += result.charged_samples / SAMPLE_RATE
        wall += result.wall_s
        audio += result.audio_samples / SAMPLE_RATE
        output += sum(p.speak.duration_samples for p in result.played) / SAMPLE_RATE
        skipped += result.skipped_steps
        steps += result.counters["steps"]
    return PolicyFigures(
        policy=policy, wer=errors / max(1, words),
        start_offset_s=statistics.median(starts) if starts else None,
        end_offset_s=statistics.median(ends) if ends else None,
        rtf=charged / audio, wall_rtf=wall / audio, output_speech_s=output, repeated_tokens=repeats,
        recommitted_tokens=recommitted, skipped_steps=skipped,
        first_commit_before_end=sum(early) / len(early) if early else None, long_sentences=len(early),
        steps=steps,
    )


def offline_wer(translator: Translator, recordings: list[Recording], lang: str,
                budget: DecodeBudget | None = None) -> float:
    """WER of translating each true sentence on its own, in complete mode; with ``budget``, under the same
    token limit the streaming policies ask for (without it a sentence the model loops on runs to the bundle's
    limit and dominates the figure)."""
    pad = round(OFFLINE_PAD_S * SAMPLE_RATE)
    errors = words = 0
    for recording in recordings:
        texts = []
        for s in recording.sentences:
            audio = recording.audio[max(0, s.start - pad) : s.end + pad]
            limit = budget.for_samples(audio.size) if budget is not None else None
            texts.append(translator.translate(audio, lang, max_new_tokens=limit).text)
        e, n = word_errors(recording.reference(lang), " ".join(texts))
        errors, words = errors + e, words + n
    return errors / max(1, words)


def run(bundle_path: Path, recordings: list[Recording], lang: str, cost: CostModel,
        policies: tuple[str, ...] = POLICIES, options: RuntimeOptions | None = None,
        ) -> tuple[dict[str, PolicyFigures], dict[str, list[SimulationResult]], dict[str, float]]:
    bundle = load_bundle(bundle_path)
    translator = Translator(bundle, options)
    backend = IncrementalTranslator.open(bundle, options)
    vad = VadModel.open(bundle, options)
    figures: dict[str, PolicyFigures] = {}
    results: dict[str, list[SimulationResult]] = {}
    for policy in policies:
        results[policy] = []
        for recording in recordings:
            state = VadState()
            results[policy].append(simulate(recording.audio, make_policy(StreamSettings(policy=policy)), backend,
                                            lambda block, state=state: vad.feed(state, block), Target(lang), cost))
        figures[policy] = evaluate(policy, results[policy], recordings, lang)
    offline = {"budget": offline_wer(translator, recordings, lang, StreamSettings().budget),
               "bundle_limit": offline_wer(translator, recordings, lang)}
    return figures, results, offline


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(figures: dict[str, PolicyFigures], offline: dict[str, float]) -> str:
    lines = [
        ("| policy | WER | StartOffset s | EndOffset s | RTF | output speech s | tokens spoken twice | "
        "re-committed | skipped steps | first commit before end (>3 s) |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures.values():
        lines.append(
            f"| {f.policy} | {_fmt(f.wer, 3)} | {_fmt(f.start_offset_s)} | {_fmt(f.end_offset_s)} | "
            f"{_fmt(f.rtf, 3)} | {_fmt(f.output_speech_s, 1)} | {f.repeated_tokens} | {f.recommitted_tokens} | "
            f"{f.skipped_steps} | {_fmt(f.first_commit_before_end)} of {f.long_sentences} |")
    lines.append(f"| offline complete, per true sentence, same token budget | {_fmt(offline['budget'], 3)} "
                 "| | | | | | | | |")
    lines.append(f"| offline complete, per true sentence, bundle token limit | "
                 f"{_fmt(offline['bundle_limit'], 3)} | | | | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--recordings", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=5)
    parser.add_argument("--lang", default="fra")
    parser.add_argument("--cost", choices=("measured", "fixed"), default="measured")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply measured costs (models a slower model or machine)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    recordings = [make_recording(args.sentences, seed) for seed in range(args.recordings)]
    options = RuntimeOptions(intra_op_threads=args.threads)
    cost = CostModel(kind=args.cost, scale=args.scale)
    figures, _, offline = run(args.bundle, recordings, args.lang, cost, options=options)
    args.out.mkdir(parents=True, exist_ok=True)
    audio_s = sum(r.audio.size for r in recordings) / SAMPLE_RATE
    report = {"bundle": str(args.bundle), "lang": args.lang, "cost": args.cost, "scale": args.scale, "audio_s": audio_s,
              "recordings": args.recordings, "offline_wer": offline,
              "policies": {name: asdict(f) for name, f in figures.items()}}
    (args.out / "streaming.json").write_text(json.dumps(report, indent=1))
    table = markdown(figures, offline)
    (args.out / "streaming.md").write_text(table + "\n")
    print(f"{args.recordings} recordings, {audio_s:.1f} s of audio, target {args.lang}, cost {args.cost} "
          f"x{args.scale}")
    print(table)


if __name__ == "__main__":
    main()
