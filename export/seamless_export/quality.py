"""Self-measurement of a non-fp32 bundle against the fp32 bundle of the same export, for the manifest.

Both bundles translate the same fixed speech inputs (``seamless_export/data``: short espeak-ng recordings, or the
caller's) into a fixed set of target languages through the daemon's own :class:`Translator`, one bundle after
the other (only one is loaded at a time). The fp32 results are the reference: the report says how often the
candidate keeps the text (exact match, token agreement, WER against fp32's text), the units (agreement) and the
length of the speech (ratio), plus the WER of both against the inputs' reference translations where known, and
the mean time per stage.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from seamless_daemon.bundle import MANIFEST_NAME, load_bundle, sha256_file, write_manifest
from seamless_daemon.runtime.pipeline import Translator
from seamless_daemon.runtime.sessions import RuntimeOptions

from seamless_export.precision import FP32, fp32_islands, graph_precisions

logger = logging.getLogger(__name__)

DATA_PACKAGE = "seamless_export"
DATA_FOLDER = "data"
INPUTS_INDEX = "inputs.json"
# Target languages measured when the bundle speaks them (space-separated scripts, so WER is meaningful);
# a bundle that speaks none of them is measured on its first MAX_LANGUAGES speech targets.
PREFERRED_LANGUAGES = ("eng", "fra", "spa", "deu")
MAX_LANGUAGES = len(PREFERRED_LANGUAGES)
SPEAKER = 0
# Every text_ids row starts with the decoder start token and the target-language token; agreement is measured
# on the tokens after them.
PROMPT_TOKENS = 2
REPORT_DECIMALS = 4
REPORT_KEY = "precision_report"
PRECISIONS_KEY = "graph_precisions"
ISLANDS_KEY = "fp32_islands"


class QualityError(ValueError):
    """The measurement cannot run (bad inputs or bundles); one-line message."""


@dataclass(frozen=True)
class SpeechInput:
    """One fixed input: mono float32 speech at ``sample_rate`` (``None``: the bundle's input rate) and, where
    known, its reference translation per language."""

    name: str
    waveform: np.ndarray
    references: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int | None = None


@dataclass(frozen=True)
class Translation:
    """What one bundle made of one (input, language) pair."""

    text: str
    generated_ids: tuple[int, ...]  # text ids after the prompt
    unit_ids: tuple[int, ...]
    speech_samples: int
    timings_ms: Mapping[str, float]


@dataclass(frozen=True)
class ReferenceWer:
    fp32: float
    candidate: float
    words: int  # reference words over all pairs that have a reference


@dataclass(frozen=True)
class PrecisionReport:
    """Candidate against fp32 over ``pairs`` (input, language) translations. Rates are shares in [0, 1]."""

    candidate_precision: str
    inputs: int
    languages: tuple[str, ...]
    pairs: int
    text_exact_match: float  # share of pairs with identical text ids
    token_agreement: float  # mean share of equal generated token ids, position by position over fp32's length
    unit_agreement: float  # the same for t2u unit ids
    speech_length_ratio: float | None  # mean of candidate / fp32 speech length, over pairs where fp32 speaks
    speech_length_match: float  # share of pairs whose speech has exactly fp32's number of samples
    text_wer_vs_fp32: float  # word error rate of the candidate's text against fp32's text
    reference_wer: ReferenceWer | None  # against the inputs' references, where they have one
    mean_ms: Mapping[str, Mapping[str, float]]  # "fp32" / "candidate" -> stage -> mean milliseconds

    def record(self) -> dict[str, Any]:
        """The report as JSON-ready data for the manifest's ``extra``."""
        data = dataclasses.asdict(self)
        data["languages"] = list(self.languages)
        return _rounded(data)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, REPORT_DECIMALS)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


# --- inputs and languages ---------------------------------------------------------------------------------------


def load_default_inputs() -> tuple[SpeechInput, ...]:
    """The recordings shipped in ``seamless_export/data`` with their references (see ``make_inputs.py`` there)."""
    folder = importlib.resources.files(DATA_PACKAGE) / DATA_FOLDER
    index = json.loads((folder / INPUTS_INDEX).read_text(encoding="utf-8"))
    inputs = []
    for entry in index:
        with importlib.resources.as_file(folder / entry["file"]) as path:
            audio, rate = sf.read(path, dtype="float32", always_2d=False)
        if audio.ndim != 1:
            raise QualityError(f"{entry['file']}: expected mono speech, got shape {audio.shape}")
        inputs.append(SpeechInput(entry["file"], audio, dict(entry.get("references", {})), int(rate)))
    return tuple(inputs)


def _as_inputs(inputs: Sequence[np.ndarray | SpeechInput] | None, sample_rate: int) -> tuple[SpeechInput, ...]:
    """The inputs as :class:`SpeechInput` (plain arrays are taken at the bundle's rate), checked against it."""
    if inputs is None:
        inputs = load_default_inputs()
    if not inputs:
        raise QualityError("no inputs to measure on")
    speech = tuple(
        item if isinstance(item, SpeechInput) else SpeechInput(f"input_{index}", np.asarray(item, dtype=np.float32))
        for index, item in enumerate(inputs)
    )
    for item in speech:
        if item.sample_rate not in (None, sample_rate):
            raise QualityError(f"{item.name}: sampled at {item.sample_rate} Hz, the bundle takes {sample_rate} Hz")
    return speech


def choose_languages(speech_targets: Sequence[str]) -> tuple[str, ...]:
    """The preferred languages the bundle speaks, else its first speech targets."""
    preferred = tuple(lang for lang in PREFERRED_LANGUAGES if lang in speech_targets)
    return preferred or tuple(speech_targets[:MAX_LANGUAGES])


# --- running a bundle -------------------------------------------------------------------------------------------


def translate_all(bundle: Path, inputs: Sequence[SpeechInput], languages: Sequence[str],
                  options: RuntimeOptions | None = None, max_new_tokens: int | None = None) -> list[Translation]:
    """Translate every (input, language) pair with ``bundle``, inputs outermost; the first pair runs twice and
    only its second run counts, so timings exclude the sessions' first-run costs."""
    translator = Translator.open(bundle, options)
    missing = [lang for lang in languages if lang not in translator.languages]
    if missing:
        raise QualityError(f"{bundle}: does not speak {', '.join(missing)}")
    translator.translate(inputs[0].waveform, languages[0], SPEAKER, max_new_tokens)
    results = []
    for item in inputs:
        for lang in languages:
            result = translator.translate(item.waveform, lang, SPEAKER, max_new_tokens)
            results.append(Translation(
                text=result.text,
                generated_ids=tuple(result.text_ids[PROMPT_TOKENS:]),
                unit_ids=tuple(result.unit_ids),
                speech_samples=int(result.waveform.size),
                timings_ms=dict(result.timings_ms),
            ))
    return results


# --- comparisons ------------------------------------------------------------------------------------------------


def positional_agreement(reference: Sequence[int], candidate: Sequence[int]) -> float:
    """Share of positions of ``reference`` where ``candidate`` holds the same id (1.0 when both are empty)."""
    if not reference:
        return 1.0 if not candidate else 0.0
    equal = sum(1 for ref, cand in zip(reference, candidate) if ref == cand)
    return equal / len(reference)


def word_edits(reference: str, hypothesis: str) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
    return row[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: all edits over all reference words (edits alone when the references hold no word)."""
    edits = sum(word_edits(ref, hyp) for ref, hyp in zip(references, hypotheses))
    words = sum(len(ref.split()) for ref in references)
    return edits / max(words, 1)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def _mean_timings(results: Sequence[Translation]) -> dict[str, float]:
    stages = dict.fromkeys(stage for result in results for stage in result.timings_ms)
    return {stage: _mean([result.timings_ms.get(stage, 0.0) for result in results]) for stage in stages}


def _reference_wer(pairs: Sequence[tuple[str | None, Translation, Translation]]) -> ReferenceWer | None:
    known = [(ref, fp32, cand) for ref, fp32, cand in pairs if ref is not None]
    if not known:
        return None
    references = [ref for ref, _, _ in known]
    return ReferenceWer(
        fp32=word_error_rate(references, [fp32.text for _, fp32, _ in known]),
        candidate=word_error_rate(references, [cand.text for _, _, cand in known]),
        words=sum(len(ref.split()) for ref in references),
    )


def compare(candidate_precision: str, inputs: Sequence[SpeechInput], languages: Sequence[str],
            fp32: Sequence[Translation], candidate: Sequence[Translation]) -> PrecisionReport:
    """The report for two runs over the same pairs (as :func:`translate_all` orders them)."""
    references = [item.references.get(lang) for item in inputs for lang in languages]
    both = list(zip(fp32, candidate))
    spoken = [(ref, cand) for ref, cand in both if ref.speech_samples > 0]
    return PrecisionReport(
        candidate_precision=candidate_precision,
        inputs=len(inputs),
        languages=tuple(languages),
        pairs=len(fp32),
        text_exact_match=_mean([float(r.generated_ids == c.generated_ids) for r, c in both]),
        token_agreement=_mean([positional_agreement(r.generated_ids, c.generated_ids) for r, c in both]),
        unit_agreement=_mean([positional_agreement(r.unit_ids, c.unit_ids) for r, c in both]),
        speech_length_ratio=_mean([c.speech_samples / r.speech_samples for r, c in spoken]) if spoken else None,
        speech_length_match=_mean([float(r.speech_samples == c.speech_samples) for r, c in both]),
        text_wer_vs_fp32=word_error_rate([r.text for r in fp32], [c.text for c in candidate]),
        reference_wer=_reference_wer(list(zip(references, fp32, candidate))),
        mean_ms={FP32: _mean_timings(fp32), "candidate": _mean_timings(candidate)},
    )


def measure_against_fp32(fp32_bundle: Path, candidate_bundle: Path,
                         inputs: Sequence[np.ndarray | SpeechInput] | None = None,
                         languages: Sequence[str] | None = None,
                         options: RuntimeOptions | None = None,
                         max_new_tokens: int | None = None) -> PrecisionReport:
    """Translate the fixed inputs (default: the shipped recordings) with both bundles and compare (at most
    ``max_new_tokens`` tokens each; default: the bundle's limit)."""
    candidate_manifest = load_bundle(candidate_bundle, verify_checksums=False).manifest
    speech = _as_inputs(inputs, candidate_manifest.input_sample_rate)
    langs = tuple(languages) if languages else choose_languages(candidate_manifest.languages.speech_targets)
    logger.info("measuring %s against %s: %d inputs x %s", candidate_bundle, fp32_bundle, len(speech), langs)
    reference_runs = translate_all(Path(fp32_bundle), speech, langs, options, max_new_tokens)
    candidate_runs = translate_all(Path(candidate_bundle), speech, langs, options, max_new_tokens)
    return compare(candidate_manifest.precision, speech, langs, reference_runs, candidate_runs)


# --- the exporter's side ----------------------------------------------------------------------------------------


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _graph_files(folder: Path, graph_name: str) -> list[Path]:
    """A graph file in ``folder`` and its external-data files (``<name>.onnx.*``)."""
    data = sorted(path for path in folder.iterdir() if path.is_file() and path.name.startswith(graph_name + "."))
    return [folder / graph_name, *data]


def build_reference_bundle(candidate_root: Path, fp32_graphs: Path, target: Path) -> Path:
    """Make ``target`` (a new folder on ``fp32_graphs``' file system) the candidate bundle with the fp32 graphs
    of ``fp32_graphs`` (same file names) in place of its own; files are hard-linked where possible."""
    candidate = load_bundle(candidate_root, verify_checksums=False).manifest
    target.mkdir()
    graphs = {}
    for role, spec in candidate.graphs.items():
        if (fp32_graphs / spec.path).is_file():
            files = _graph_files(fp32_graphs, spec.path)
        else:
            files = [candidate_root / name for name in (spec.path, *spec.external_data)]
        for path in files:
            _link_or_copy(path, target / path.name)
        graphs[role] = dataclasses.replace(spec, external_data=tuple(path.name for path in files[1:]), precision=FP32)
    graph_files = {name for spec in candidate.graphs.values() for name in (spec.path, *spec.external_data)}
    for name in candidate.files:
        if name not in graph_files:
            _link_or_copy(candidate_root / name, target / name)
    files = {path.name: sha256_file(path) for path in sorted(target.iterdir()) if path.is_file()}
    write_manifest(target, dataclasses.replace(candidate, precision=FP32, graphs=graphs, files=files, extra={}))
    return target


def precision_entries(fp32_graphs: Path, candidate_bundle: Path,
                      inputs: Sequence[np.ndarray | SpeechInput] | None = None,
                      options: RuntimeOptions | None = None,
                      max_new_tokens: int | None = None) -> dict[str, Any]:
    """The manifest ``extra`` entries of a non-fp32 bundle: the precision of each graph, what stays float32
    inside converted graphs, and the report against fp32.

    ``fp32_graphs`` is an fp32 bundle, or the folder of the export's fp32 graphs named as in the candidate
    bundle (a reference bundle is then assembled inside it for the measurement and removed afterwards).
    """
    fp32_graphs, candidate_root = Path(fp32_graphs), Path(candidate_bundle)
    manifest = load_bundle(candidate_root, verify_checksums=False).manifest
    if (fp32_graphs / MANIFEST_NAME).is_file():
        report = measure_against_fp32(fp32_graphs, candidate_root, inputs, options=options,
                                      max_new_tokens=max_new_tokens)
    else:
        with tempfile.TemporaryDirectory(prefix="reference-bundle-", dir=fp32_graphs) as scratch:
            reference = build_reference_bundle(candidate_root, fp32_graphs, Path(scratch) / "bundle")
            report = measure_against_fp32(reference, candidate_root, inputs, options=options,
                                          max_new_tokens=max_new_tokens)
    return {
        PRECISIONS_KEY: graph_precisions(manifest.precision, tuple(manifest.graphs)),
        ISLANDS_KEY: fp32_islands(manifest.precision),
        REPORT_KEY: report.record(),
    }


def attach_report(fp32_graphs: Path, candidate_bundle: Path,
                  inputs: Sequence[np.ndarray | SpeechInput] | None = None,
                  options: RuntimeOptions | None = None,
                  max_new_tokens: int | None = None) -> dict[str, Any]:
    """Measure ``candidate_bundle`` against fp32 (see :func:`precision_entries`), add the entries to its
    manifest's ``extra`` (rewriting manifest.json; graph files are untouched) and return them."""
    entries = precision_entries(fp32_graphs, candidate_bundle, inputs, options, max_new_tokens)
    manifest = load_bundle(candidate_bundle, verify_checksums=False).manifest
    write_manifest(Path(candidate_bundle), dataclasses.replace(manifest, extra={**manifest.extra, **entries}))
    report = entries[REPORT_KEY]
    logger.info("%s against fp32: text exact %.2f, token agreement %.3f, unit agreement %.3f, speech length x%s, "
                "WER vs fp32 %.3f", report["candidate_precision"], report["text_exact_match"],
                report["token_agreement"], report["unit_agreement"], report["speech_length_ratio"],
                report["text_wer_vs_fp32"])
    return entries
