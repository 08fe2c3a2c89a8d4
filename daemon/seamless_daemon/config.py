"""Daemon configuration: YAML file → validated, frozen dataclasses.

The file is read with ``yaml.safe_load`` and checked key by key. Unknown keys, wrong types, values out of
range and bad enums all raise :class:`ConfigError` whose message is one line naming the key path, e.g.
``translation.speaker: must be an integer >= 0, got "x"``. Only ``bundle`` is required; everything else has
the default documented in ``config/seamless-daemon.yaml``.

Device names are only checked for shape here; resolving them against real devices is the audio layer's job.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

MODES = ("complete", "streaming")
WHILE_PLAYING_CHOICES = ("queue", "refuse")
LOG_LEVELS = ("debug", "info", "warning", "error")
STREAMING_POLICIES = ("overlap", "vad", "agreement")
DEVICE_DEFAULT = "default"

DEFAULT_SOCKET = "/run/seamless-daemon/control.sock"
DEFAULT_SOCKET_MODE = 0o660
MIB = 1 << 20
DEFAULT_MAX_MESSAGE_BYTES = 16 * MIB
# A 30 s WAV (16 kHz, 16-bit) is about 1.3 MB as base64; below this a translate request cannot fit.
MIN_MAX_MESSAGE_BYTES = 64 * 1024
MAX_MAX_MESSAGE_BYTES = 256 * MIB
MAX_CLIENTS_LIMIT = 1024
MAX_SAVED_RECORDINGS = 10000
# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107
OCTAL_MODE_PATTERN = re.compile(r"^0?[0-7]{3}$")
LANG_PATTERN = re.compile(r"^[a-z]{3}(_[A-Za-z]{2,8})?$")
MAX_SHOWN_VALUE_CHARS = 60


class ConfigError(Exception):
    """An unusable configuration. ``str()`` is one line: ``[origin: ]key.path: problem``."""

    def __init__(self, key: str, problem: str, origin: str = "") -> None:
        self.key = key
        self.problem = problem
        self.origin = origin
        where = f"{origin}: " if origin else ""
        super().__init__(f"{where}{key}: {problem}" if key else f"{where}{problem}")


@dataclass(frozen=True)
class TranslationConfig:
    source_lang: str = "eng"
    target_lang: str = "fra"
    speaker: int = 0
    max_new_tokens: int | None = None  # None: the bundle's own limit


@dataclass(frozen=True)
class RuntimeConfig:
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0  # 0: ONNX Runtime's default
    inter_op_threads: int = 1


@dataclass(frozen=True)
class AudioConfig:
    input_device: str | int = DEVICE_DEFAULT
    output_device: str | int = DEVICE_DEFAULT
    input_sample_rate: int | None = None  # None: the device's default rate
    output_sample_rate: int | None = None
    block_ms: int = 20
    queue_seconds: float = 5.0
    echo_guard: bool = True
    reopen_backoff_initial_s: float = 0.5
    reopen_backoff_max_s: float = 10.0


@dataclass(frozen=True)
class RecordingConfig:
    max_seconds: float = 30.0
    while_playing: str = "queue"
    save_dir: Path | None = None  # keep each recording as a WAV here (what the microphone heard)
    save_max_files: int = 20


@dataclass(frozen=True)
class ControlConfig:
    socket: str = DEFAULT_SOCKET
    mode: int = DEFAULT_SOCKET_MODE
    group: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_clients: int = 16


@dataclass(frozen=True)
class ServiceConfig:
    stop_timeout_s: float = 5.0


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"


@dataclass(frozen=True)
class OverlapConfig:
    """The seed's fixed chunks (``streaming.overlap``)."""

    chunk_s: float = 2.0
    overlap_s: float = 0.5
    min_output_gap_s: float = 0.5
    history_s: float = 10.0


@dataclass(frozen=True)
class SegmenterConfig:
    """VAD segmentation into utterances (``streaming.segmenter``)."""

    threshold: float = 0.5
    release_margin: float = 0.15
    min_silence_s: float = 0.6
    min_speech_s: float = 0.25
    max_utterance_s: float = 12.0
    cut_search_fraction: float = 0.5
    pre_roll_s: float = 0.3
    post_roll_s: float = 0.1


@dataclass(frozen=True)
class AgreementConfig:
    """LocalAgreement-2 re-translation (``streaming.agreement``)."""

    step_s: float = 0.5
    max_lag_s: float = 0.5
    word_boundary: bool = True


@dataclass(frozen=True)
class BudgetConfig:
    """Token limit per step (``streaming.budget``): tokens_per_second × audio seconds + extra_tokens."""

    tokens_per_second: float = 8.0
    extra_tokens: int = 8


@dataclass(frozen=True)
class StreamingConfig:
    policy: str = "agreement"
    min_translate_s: float = 0.1
    overlap: OverlapConfig = field(default_factory=OverlapConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    agreement: AgreementConfig = field(default_factory=AgreementConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)


@dataclass(frozen=True)
class Config:
    bundle: Path
    mode: str = "complete"
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)


@dataclass(frozen=True)
class ReloadResult:
    """Outcome of :func:`reload_config`: exactly one of ``config`` and ``error`` is set."""

    config: Config | None = None
    error: ConfigError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --- value checkers: (value, key path) -> converted value, or raise _Invalid -------------------------------


class _Invalid(Exception):
    """A value problem; the parser adds the origin and raises ConfigError."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


Checker = Callable[[Any, str], Any]


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = text.replace("\n", " ")
    if len(text) > MAX_SHOWN_VALUE_CHARS:
        text = text[: MAX_SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(minimum: int, maximum: int | None = None) -> Checker:
    def check(value: Any, key: str) -> int:
        in_range = _is_int(value) and value >= minimum and (maximum is None or value <= maximum)
        if not in_range:
            bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise _Invalid(key, f"must be an integer {bound}, got {_show(value)}")
        return int(value)

    return check


def _optional(checker: Checker, null_means: str) -> Checker:
    def check(value: Any, key: str) -> Any:
        if value is None:
            return None
        try:
            return checker(value, key)
        except _Invalid as exc:
            raise _Invalid(key, f"{exc.problem} (or null for {null_means})") from None

    return check


def _positive_number(value: Any, key: str) -> float:
    if not _is_number(value) or value <= 0:
        raise _Invalid(key, f"must be a number > 0, got {_show(value)}")
    return float(value)


def _non_negative_number(value: Any, key: str) -> float:
    if not _is_number(value) or value < 0:
        raise _Invalid(key, f"must be a number >= 0, got {_show(value)}")
    return float(value)


def _fraction(open_low: bool) -> Checker:
    """A number in (0, 1) when ``open_low``, else in [0, 1)."""

    def check(value: Any, key: str) -> float:
        low_ok = _is_number(value) and (value > 0 if open_low else value >= 0)
        if not low_ok or value >= 1:
            bounds = "(0, 1)" if open_low else "[0, 1)"
            raise _Invalid(key, f"must be a number in {bounds}, got {_show(value)}")
        return float(value)

    return check


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(key, f"must be true or false, got {_show(value)}")
    return value


def _enum(choices: tuple[str, ...]) -> Checker:
    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise _Invalid(key, f"must be one of {', '.join(choices)}; got {_show(value)}")
        return value

    return check


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise _Invalid(key, f"must be a non-empty one-line string, got {_show(value)}")
    return value


def _lang(value: Any, key: str) -> str:
    if not isinstance(value, str) or not LANG_PATTERN.match(value):
        raise _Invalid(key, f"must be a language code like \"fra\" or \"cmn_Hant\", got {_show(value)}")
    return value


def _providers(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(key, f"must be a non-empty list of provider names, got {_show(value)}")
    for index, item in enumerate(value):
        _text(item, f"{key}[{index}]")
    return tuple(value)


def _device(value: Any, key: str) -> str | int:
    if _is_int(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip() and "\n" not in value:
        return value
    raise _Invalid(key, f"must be \"default\", a device name substring or an index >= 0, got {_show(value)}")


def _octal_mode(value: Any, key: str) -> int:
    if not isinstance(value, str) or not OCTAL_MODE_PATTERN.match(value):
        raise _Invalid(key, f"must be a quoted octal permission string like \"0660\", got {_show(value)}")
    return int(value, 8)


def _socket_path(value: Any, key: str) -> str:
    text = _text(value, key)
    if not text.startswith("/"):
        raise _Invalid(key, f"must be an absolute path, got {_show(value)}")
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > UNIX_SOCKET_PATH_MAX:
        raise _Invalid(key, f"is {size} bytes, longer than the {UNIX_SOCKET_PATH_MAX}-byte UNIX socket limit")
    return text


def _path(value: Any, key: str) -> Path:
    return Path(_text(value, key))


def _mapping(cls: type, checkers: Mapping[str, Checker]) -> Checker:
    """A nested mapping of keys (e.g. ``streaming.overlap``), checked key by key into ``cls``."""

    def check(value: Any, key: str) -> Any:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise _Invalid(key, f"must be a mapping of keys, got {_show(value)}")
        _check_keys(value, checkers, f"{key}.")
        return cls(**{name: checkers[name](item, f"{key}.{name}") for name, item in value.items()})

    return check


# --- sections ----------------------------------------------------------------------------------------------

STREAMING_CHECKERS: dict[str, Checker] = {
    "policy": _enum(STREAMING_POLICIES),
    "min_translate_s": _positive_number,
    "overlap": _mapping(OverlapConfig, {
        "chunk_s": _positive_number,
        "overlap_s": _non_negative_number,
        "min_output_gap_s": _non_negative_number,
        "history_s": _positive_number,
    }),
    "segmenter": _mapping(SegmenterConfig, {
        "threshold": _fraction(open_low=True),
        "release_margin": _fraction(open_low=False),
        "min_silence_s": _positive_number,
        "min_speech_s": _positive_number,
        "max_utterance_s": _positive_number,
        "cut_search_fraction": _positive_number,
        "pre_roll_s": _non_negative_number,
        "post_roll_s": _non_negative_number,
    }),
    "agreement": _mapping(AgreementConfig, {
        "step_s": _positive_number,
        "max_lag_s": _non_negative_number,
        "word_boundary": _bool,
    }),
    "budget": _mapping(BudgetConfig, {
        "tokens_per_second": _positive_number,
        "extra_tokens": _int(1),
    }),
}

SECTION_SCHEMAS: dict[str, tuple[type, dict[str, Checker]]] = {
    "translation": (TranslationConfig, {
        "source_lang": _lang,
        "target_lang": _lang,
        "speaker": _int(0),
        "max_new_tokens": _optional(_int(1), "the bundle's own limit"),
    }),
    "runtime": (RuntimeConfig, {
        "providers": _providers,
        "intra_op_threads": _int(0),
        "inter_op_threads": _int(1),
    }),
    "audio": (AudioConfig, {
        "input_device": _device,
        "output_device": _device,
        "input_sample_rate": _optional(_int(1), "the device's default rate"),
        "output_sample_rate": _optional(_int(1), "the device's default rate"),
        "block_ms": _int(1),
        "queue_seconds": _positive_number,
        "echo_guard": _bool,
        "reopen_backoff_initial_s": _positive_number,
        "reopen_backoff_max_s": _positive_number,
    }),
    "recording": (RecordingConfig, {
        "max_seconds": _positive_number,
        "while_playing": _enum(WHILE_PLAYING_CHOICES),
        "save_dir": _optional(_path, "recordings are not kept"),
        "save_max_files": _int(1, MAX_SAVED_RECORDINGS),
    }),
    "control": (ControlConfig, {
        "socket": _socket_path,
        "mode": _octal_mode,
        "group": _optional(_text, "no group"),
        "max_message_bytes": _int(MIN_MAX_MESSAGE_BYTES, MAX_MAX_MESSAGE_BYTES),
        "max_clients": _int(1, MAX_CLIENTS_LIMIT),
    }),
    "service": (ServiceConfig, {"stop_timeout_s": _positive_number}),
    "logging": (LoggingConfig, {"level": _enum(LOG_LEVELS)}),
    "streaming": (StreamingConfig, STREAMING_CHECKERS),
}
TOP_LEVEL_CHECKERS: dict[str, Checker] = {"bundle": _path, "mode": _enum(MODES)}


def _check_keys(data: Mapping[Any, Any], allowed: Mapping[str, Any], prefix: str) -> None:
    for key in data:
        if not isinstance(key, str) or key not in allowed:
            path = f"{prefix}{key}"
            raise _Invalid(path, f"unknown key (allowed: {', '.join(allowed)})")


def _parse_section(name: str, value: Any) -> Any:
    cls, checkers = SECTION_SCHEMAS[name]
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise _Invalid(name, f"must be a mapping of keys, got {_show(value)}")
    _check_keys(value, checkers, f"{name}.")
    kwargs = {key: checkers[key](item, f"{name}.{key}") for key, item in value.items()}
    return cls(**kwargs)


def _check_streaming(streaming: StreamingConfig) -> None:
    """The knobs that depend on each other (the same rules as ``stream.settings``)."""
    overlap, segmenter = streaming.overlap, streaming.segmenter
    if overlap.overlap_s >= overlap.chunk_s:
        raise _Invalid("streaming.overlap.overlap_s",
                       f"must be < streaming.overlap.chunk_s ({overlap.chunk_s}), got {overlap.overlap_s}")
    if overlap.history_s < overlap.chunk_s:
        raise _Invalid("streaming.overlap.history_s",
                       f"must be >= streaming.overlap.chunk_s ({overlap.chunk_s}), got {overlap.history_s}")
    if segmenter.release_margin >= segmenter.threshold:
        raise _Invalid("streaming.segmenter.release_margin",
                       f"must be < streaming.segmenter.threshold ({segmenter.threshold}), "
                       f"got {segmenter.release_margin}")
    if segmenter.cut_search_fraction > 1:
        raise _Invalid("streaming.segmenter.cut_search_fraction",
                       f"must be in (0, 1], got {segmenter.cut_search_fraction}")
    if segmenter.max_utterance_s <= 2 * segmenter.min_speech_s:
        raise _Invalid("streaming.segmenter.max_utterance_s",
                       f"must be more than twice streaming.segmenter.min_speech_s ({segmenter.min_speech_s}), "
                       f"got {segmenter.max_utterance_s}")


def _check_cross_fields(config: Config) -> None:
    audio = config.audio
    if audio.reopen_backoff_max_s < audio.reopen_backoff_initial_s:
        raise _Invalid(
            "audio.reopen_backoff_max_s",
            f"must be >= audio.reopen_backoff_initial_s ({audio.reopen_backoff_initial_s}), "
            f"got {audio.reopen_backoff_max_s}",
        )
    _check_streaming(config.streaming)


def parse_config(data: Any, origin: str = "") -> Config:
    """Validate an already-parsed YAML document. ``origin`` (usually the file path) prefixes errors."""
    try:
        if data is None:
            raise _Invalid("bundle", "required key is missing (the file is empty)")
        if not isinstance(data, dict):
            raise _Invalid("", f"the top level must be a mapping of keys, got {_show(data)}")
        _check_keys(data, {**TOP_LEVEL_CHECKERS, **SECTION_SCHEMAS}, "")
        if "bundle" not in data:
            raise _Invalid("bundle", "required key is missing")
        top = {key: check(data[key], key) for key, check in TOP_LEVEL_CHECKERS.items() if key in data}
        sections = {name: _parse_section(name, data[name]) for name in SECTION_SCHEMAS if name in data}
        config = Config(**top, **sections)
        _check_cross_fields(config)
    except _Invalid as exc:
        raise ConfigError(exc.key, exc.problem, origin) from None
    return config


def _first_line(text: str) -> str:
    return " ".join(text.split())


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a config file. A relative ``bundle`` is taken relative to the file's folder."""
    path = Path(path)
    origin = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", "config file not found", origin) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read config file: {_first_line(str(exc))}", origin) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", f"YAML syntax error{where}: {_first_line(problem)}", origin) from None
    config = parse_config(data, origin)
    if not config.bundle.is_absolute():
        config = replace(config, bundle=(path.parent / config.bundle).resolve())
    logger.debug("loaded config %s", origin)
    return config


def reload_config(path: str | Path) -> ReloadResult:
    """Re-read a config file for a live reload: returns the new config or the error, never raises ConfigError."""
    try:
        return ReloadResult(config=load_config(path))
    except ConfigError as exc:
        logger.warning("config reload failed: %s", exc)
        return ReloadResult(error=exc)

