"""Helpers shared by the streaming tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seamless_daemon.bundle import Bundle
from seamless_daemon.runtime.incremental import IncrementalTranslator
from seamless_daemon.runtime.pipeline import Translator
from seamless_daemon.runtime.vad import VadModel


@dataclass(frozen=True)
class ToyRuntime:
    bundle: Bundle
    path: Path
    translator: Translator
    incremental: IncrementalTranslator
    vad: VadModel
