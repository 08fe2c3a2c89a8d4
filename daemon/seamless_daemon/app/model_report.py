"""What ``status`` says about the model: the bundle, where each graph runs, its precision, and load times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seamless_daemon.runtime.pipeline import Translator

SECONDS_DECIMALS = 3


@dataclass(frozen=True)
class LoadTimes:
    """Seconds from the start of the bundle load to every session open, and of the warm-up after it."""

    load_s: float
    warmup_s: float


def bundle_info(translator: Translator) -> dict[str, Any]:
    manifest = translator.bundle.manifest
    return {"path": str(translator.bundle.root), "source_model": manifest.source_model,
            "revision": manifest.source_revision, "precision": manifest.precision}


def graph_report(translator: Translator) -> dict[str, dict[str, Any]]:
    """Per graph role: the provider its session really got, the one asked for, and the graph's precision (the
    manifest's, per graph: a recipe keeps some graphs in fp32)."""
    manifest = translator.bundle.manifest
    report: dict[str, dict[str, Any]] = {}
    for role, session in translator.sessions.items():
        report[role] = {
            "provider": session.provider,
            "requested_provider": session.requested_provider,
            "fell_back": session.fell_back,
            "precision": manifest.graphs[role].precision,
        }
    return report


def model_status(translator: Translator, times: LoadTimes | None) -> dict[str, Any]:
    status: dict[str, Any] = {"graphs": graph_report(translator)}
    if times is not None:
        status["load_s"] = round(times.load_s, SECONDS_DECIMALS)
        status["warmup_s"] = round(times.warmup_s, SECONDS_DECIMALS)
    return status
