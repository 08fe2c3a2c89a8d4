"""Daemon configuration: YAML file → validated, frozen dataclasses.

The file is read with ``yaml.safe_load`` and checked key by key. Unknown keys, wrong types, values out of
range and bad enums all raise :class:`ConfigError` whose message is one line naming the key path, e.g.
``translation.speaker: must be an integer >= 0, got "x"``. Only ``bundle`` is required; everything else has
the default documented in ``config/seamless-daemon.yaml``.

Device names are only checked for shape here; resolving them against real devices is the audio layer's job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from seamless_daemon import config_checks as checks
from seamless_daemon.config_checks import Checker, Invalid, check_keys, show
from seamless_daemon.provider_spec import CPU_PROVIDER, ProviderSpec, check_providers

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
# The unit's StateDirectory=seamless-daemon; TensorRT engines are cached under it.
DEFAULT_STATE_DIR = Path("/var/lib/seamless-daemon")
TENSORRT_CACHE_SUBDIR = "tensorrt"


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
    providers: tuple[ProviderSpec, ...] = (ProviderSpec(CPU_PROVIDER),)
    require_provider: bool = False  # True: start fails when the first provider is missing, instead of falling back
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
    state_dir: Path = DEFAULT_STATE_DIR  # the daemon's own files (TensorRT engine cache)


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


# --- sections ----------------------------------------------------------------------------------------------

STREAMING_CHECKERS: dict[str, Checker] = {
    "policy": checks.enum(STREAMING_POLICIES),
    "min_translate_s": checks.positive_number,
    "overlap": checks.mapping(OverlapConfig, {
        "chunk_s": checks.positive_number,
        "overlap_s": checks.non_negative_number,
        "min_output_gap_s": checks.non_negative_number,
        "history_s": checks.positive_number,
    }),
    "segmenter": checks.mapping(SegmenterConfig, {
        "threshold": checks.fraction(open_low=True),
        "release_margin": checks.fraction(open_low=False),
        "min_silence_s": checks.positive_number,
        "min_speech_s": checks.positive_number,
        "max_utterance_s": checks.positive_number,
        "cut_search_fraction": checks.positive_number,
        "pre_roll_s": checks.non_negative_number,
        "post_roll_s": checks.non_negative_number,
    }),
    "agreement": checks.mapping(AgreementConfig, {
        "step_s": checks.positive_number,
        "max_lag_s": checks.non_negative_number,
        "word_boundary": checks.boolean,
    }),
    "budget": checks.mapping(BudgetConfig, {
        "tokens_per_second": checks.positive_number,
        "extra_tokens": checks.integer(1),
    }),
}

SECTION_SCHEMAS: dict[str, tuple[type, dict[str, Checker]]] = {
    "translation": (TranslationConfig, {
        "source_lang": checks.lang,
        "target_lang": checks.lang,
        "speaker": checks.integer(0),
        "max_new_tokens": checks.optional(checks.integer(1), "the bundle's own limit"),
    }),
    "runtime": (RuntimeConfig, {
        "providers": check_providers,
        "require_provider": checks.boolean,
        "intra_op_threads": checks.integer(0),
        "inter_op_threads": checks.integer(1),
    }),
    "audio": (AudioConfig, {
        "input_device": checks.device,
        "output_device": checks.device,
        "input_sample_rate": checks.optional(checks.integer(1), "the device's default rate"),
        "output_sample_rate": checks.optional(checks.integer(1), "the device's default rate"),
        "block_ms": checks.integer(1),
        "queue_seconds": checks.positive_number,
        "echo_guard": checks.boolean,
        "reopen_backoff_initial_s": checks.positive_number,
        "reopen_backoff_max_s": checks.positive_number,
    }),
    "recording": (RecordingConfig, {
        "max_seconds": checks.positive_number,
        "while_playing": checks.enum(WHILE_PLAYING_CHOICES),
        "save_dir": checks.optional(checks.path, "recordings are not kept"),
        "save_max_files": checks.integer(1, MAX_SAVED_RECORDINGS),
    }),
    "control": (ControlConfig, {
        "socket": checks.socket_path,
        "mode": checks.octal_mode,
        "group": checks.optional(checks.text, "no group"),
        "max_message_bytes": checks.integer(MIN_MAX_MESSAGE_BYTES, MAX_MAX_MESSAGE_BYTES),
        "max_clients": checks.integer(1, MAX_CLIENTS_LIMIT),
    }),
    "service": (ServiceConfig, {"stop_timeout_s": checks.positive_number, "state_dir": checks.absolute_path}),
    "logging": (LoggingConfig, {"level": checks.enum(LOG_LEVELS)}),
    "streaming": (StreamingConfig, STREAMING_CHECKERS),
}
TOP_LEVEL_CHECKERS: dict[str, Checker] = {"bundle": checks.path, "mode": checks.enum(MODES)}


def _parse_section(name: str, value: Any) -> Any:
    cls, checkers = SECTION_SCHEMAS[name]
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise Invalid(name, f"must be a mapping of keys, got {show(value)}")
    check_keys(value, checkers, f"{name}.")
    kwargs = {key: checkers[key](item, f"{name}.{key}") for key, item in value.items()}
    return cls(**kwargs)


def _check_streaming(streaming: StreamingConfig) -> None:
    """The knobs that depend on each other (the same rules as ``stream.settings``)."""
    overlap, segmenter = streaming.overlap, streaming.segmenter
    if overlap.overlap_s >= overlap.chunk_s:
        raise Invalid("streaming.overlap.overlap_s",
                      f"must be < streaming.overlap.chunk_s ({overlap.chunk_s}), got {overlap.overlap_s}")
    if overlap.history_s < overlap.chunk_s:
        raise Invalid("streaming.overlap.history_s",
                      f"must be >= streaming.overlap.chunk_s ({overlap.chunk_s}), got {overlap.history_s}")
    if segmenter.release_margin >= segmenter.threshold:
        raise Invalid("streaming.segmenter.release_margin",
                      f"must be < streaming.segmenter.threshold ({segmenter.threshold}), "
                      f"got {segmenter.release_margin}")
    if segmenter.cut_search_fraction > 1:
        raise Invalid("streaming.segmenter.cut_search_fraction",
                      f"must be in (0, 1], got {segmenter.cut_search_fraction}")
    if segmenter.max_utterance_s <= 2 * segmenter.min_speech_s:
        raise Invalid("streaming.segmenter.max_utterance_s",
                      f"must be more than twice streaming.segmenter.min_speech_s ({segmenter.min_speech_s}), "
                      f"got {segmenter.max_utterance_s}")


def _check_cross_fields(config: Config) -> None:
    audio = config.audio
    if audio.reopen_backoff_max_s < audio.reopen_backoff_initial_s:
        raise Invalid(
            "audio.reopen_backoff_max_s",
            f"must be >= audio.reopen_backoff_initial_s ({audio.reopen_backoff_initial_s}), "
            f"got {audio.reopen_backoff_max_s}",
        )
    _check_streaming(config.streaming)


def _with_engine_cache_dirs(config: Config) -> Config:
    """A TensorRT engine cache without a folder of its own goes under ``service.state_dir``."""
    default = config.service.state_dir / TENSORRT_CACHE_SUBDIR
    specs = tuple(
        replace(spec, tensorrt=replace(spec.tensorrt, engine_cache_dir=default))
        if spec.tensorrt is not None and spec.tensorrt.engine_cache_dir is None else spec
        for spec in config.runtime.providers
    )
    return replace(config, runtime=replace(config.runtime, providers=specs))


def parse_config(data: Any, origin: str = "") -> Config:
    """Validate an already-parsed YAML document. ``origin`` (usually the file path) prefixes errors."""
    try:
        if data is None:
            raise Invalid("bundle", "required key is missing (the file is empty)")
        if not isinstance(data, dict):
            raise Invalid("", f"the top level must be a mapping of keys, got {show(data)}")
        check_keys(data, {**TOP_LEVEL_CHECKERS, **SECTION_SCHEMAS}, "")
        if "bundle" not in data:
            raise Invalid("bundle", "required key is missing")
        top = {key: check(data[key], key) for key, check in TOP_LEVEL_CHECKERS.items() if key in data}
        sections = {name: _parse_section(name, data[name]) for name in SECTION_SCHEMAS if name in data}
        config = Config(**top, **sections)
        _check_cross_fields(config)
    except Invalid as exc:
        raise ConfigError(exc.key, exc.problem, origin) from None
    return _with_engine_cache_dirs(config)


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

