"""The live translation options (what ``set`` and ``swap`` change), kept apart from the file config."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from seamless_daemon.config import Config


@dataclass(frozen=True)
class LiveOptions:
    source_lang: str
    target_lang: str
    speaker: int
    mode: str
    policy: str  # streaming policy

    @classmethod
    def from_config(cls, config: Config) -> LiveOptions:
        t = config.translation
        return cls(source_lang=t.source_lang, target_lang=t.target_lang, speaker=t.speaker, mode=config.mode,
                   policy=config.streaming.policy)


class OptionsHolder:
    """Thread-safe holder of the current :class:`LiveOptions`; every change replaces the whole snapshot."""

    def __init__(self, options: LiveOptions) -> None:
        self._lock = threading.Lock()
        self._options = options

    def get(self) -> LiveOptions:
        with self._lock:
            return self._options

    def update(self, **changes: object) -> LiveOptions:
        with self._lock:
            self._options = replace(self._options, **{k: v for k, v in changes.items() if v is not None})
            return self._options

    def swap(self) -> LiveOptions:
        with self._lock:
            o = self._options
            self._options = replace(o, source_lang=o.target_lang, target_lang=o.source_lang)
            return self._options
