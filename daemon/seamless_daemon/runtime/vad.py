"""Silero VAD through ONNX Runtime: the bundle's ``vad`` graph, one speech probability per 32 ms.

At 16 kHz the graph takes 512 new samples behind the previous call's last 64 samples (``input`` [B, 576]), the
recurrent ``state`` [2, B, 128] and the rate ``sr``; it returns the speech probability ``output`` [B, 1] and the
next state. :class:`VadModel` holds the shared session; each stream keeps its own :class:`VadState` (state,
context and the samples that do not fill a window yet), so blocks of any size can be fed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from seamless_daemon.bundle import ROLE_VAD, Bundle
from seamless_daemon.runtime.sessions import GraphSession, RuntimeOptions, open_session

logger = logging.getLogger(__name__)

VAD_SAMPLE_RATE = 16000
VAD_WINDOW = 512  # new samples per probability at 16 kHz
VAD_CONTEXT = 64  # samples of the previous window put in front of each window
VAD_STATE_SHAPE = (2, 1, 128)


@dataclass
class VadState:
    """Per-stream recurrent state of the VAD."""

    state: np.ndarray = field(default_factory=lambda: np.zeros(VAD_STATE_SHAPE, dtype=np.float32))
    context: np.ndarray = field(default_factory=lambda: np.zeros(VAD_CONTEXT, dtype=np.float32))
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # < one window
    windows: int = 0  # probabilities produced so far

    def reset(self) -> None:
        self.state = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        self.context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self.pending = np.zeros(0, dtype=np.float32)
        self.windows = 0


class VadModel:
    """The bundle's VAD session; safe to share between streams (state lives in :class:`VadState`)."""

    def __init__(self, session: GraphSession) -> None:
        self._session = session
        self._rate = np.asarray(VAD_SAMPLE_RATE, dtype=np.int64)

    @classmethod
    def open(cls, bundle: Bundle, options: RuntimeOptions | None = None) -> VadModel:
        if bundle.manifest.input_sample_rate != VAD_SAMPLE_RATE:
            raise ValueError(f"the VAD runs at {VAD_SAMPLE_RATE} Hz; the bundle takes "
                             f"{bundle.manifest.input_sample_rate} Hz")
        return cls(open_session(bundle, ROLE_VAD, options if options is not None else RuntimeOptions()))

    def window(self, state: VadState, samples: np.ndarray) -> float:
        """Probability of one 512-sample window; advances ``state``."""
        chunk = np.concatenate([state.context, np.asarray(samples, dtype=np.float32)])[np.newaxis, :]
        outputs = self._session.run({"input": chunk, "state": state.state, "sr": self._rate})
        state.state = outputs["stateN"]
        state.context = chunk[0, -VAD_CONTEXT:].copy()
        state.windows += 1
        return float(outputs["output"][0, 0])

    def feed(self, state: VadState, block: np.ndarray) -> np.ndarray:
        """Probabilities (float32) of every window that ``block`` completes, in order."""
        samples = np.concatenate([state.pending, np.asarray(block, dtype=np.float32).reshape(-1)])
        count = samples.size // VAD_WINDOW
        probabilities = np.zeros(count, dtype=np.float32)
        for index in range(count):
            probabilities[index] = self.window(state, samples[index * VAD_WINDOW : (index + 1) * VAD_WINDOW])
        state.pending = samples[count * VAD_WINDOW :].copy()
        return probabilities
