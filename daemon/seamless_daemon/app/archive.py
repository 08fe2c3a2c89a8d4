"""Keeps recordings as WAV files (``recording.save_dir``), so an operator can hear what the microphone heard.

The folder holds at most ``max_files`` recordings; the oldest are deleted first.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import numpy as np

from seamless_daemon.audio.wavfile import write_wav

logger = logging.getLogger(__name__)

PATTERN = "recording-*.wav"
SUBTYPE = "FLOAT"  # exactly the samples that were translated


class RecordingArchive:
    def __init__(self, folder: Path, max_files: int) -> None:
        self._folder = folder
        self._max_files = max_files
        self._counter = itertools.count(1)

    def save(self, samples: np.ndarray, sample_rate: int) -> Path | None:
        """Write one recording; failures are logged, never raised (keeping a copy must not cost a translation)."""
        name = f"recording-{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter):04d}.wav"
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            path = write_wav(self._folder / name, samples, sample_rate, subtype=SUBTYPE)
            self._prune()
        except (OSError, ValueError) as exc:
            logger.warning("could not keep the recording in %s: %s", self._folder, exc)
            return None
        logger.info("kept the recording as %s", path)
        return path

    def _prune(self) -> None:
        files = sorted(self._folder.glob(PATTERN), key=lambda p: p.stat().st_mtime_ns)
        for old in files[: max(0, len(files) - self._max_files)]:
            old.unlink(missing_ok=True)
