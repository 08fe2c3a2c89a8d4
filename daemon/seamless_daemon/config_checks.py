"""Value checkers of the YAML config: ``(value, key path) -> converted value``, or raise :class:`Invalid`.

Each checker names the key path and the problem in one line (``translation.speaker: must be an integer >= 0,
got "x"``); :mod:`seamless_daemon.config` turns :class:`Invalid` into ``ConfigError`` with the file's name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MAX_SHOWN_VALUE_CHARS = 60
OCTAL_MODE_PATTERN = re.compile(r"^0?[0-7]{3}$")
LANG_PATTERN = re.compile(r"^[a-z]{3}(_[A-Za-z]{2,8})?$")
# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107


class Invalid(Exception):
    """A value problem at ``key``; the parser adds the origin and raises ConfigError."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


Checker = Callable[[Any, str], Any]


def show(value: Any) -> str:
    """A value as the error message quotes it: JSON, on one line, shortened."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = text.replace("\n", " ")
    if len(text) > MAX_SHOWN_VALUE_CHARS:
        text = text[: MAX_SHOWN_VALUE_CHARS - 3] + "..."
    return text


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum: int, maximum: int | None = None) -> Checker:
    def check(value: Any, key: str) -> int:
        in_range = is_int(value) and value >= minimum and (maximum is None or value <= maximum)
        if not in_range:
            bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise Invalid(key, f"must be an integer {bound}, got {show(value)}")
        return int(value)

    return check


def optional(checker: Checker, null_means: str) -> Checker:
    def check(value: Any, key: str) -> Any:
        if value is None:
            return None
        try:
            return checker(value, key)
        except Invalid as exc:
            raise Invalid(exc.key, f"{exc.problem} (or null for {null_means})") from None

    return check


def positive_number(value: Any, key: str) -> float:
    if not _is_number(value) or value <= 0:
        raise Invalid(key, f"must be a number > 0, got {show(value)}")
    return float(value)


def non_negative_number(value: Any, key: str) -> float:
    if not _is_number(value) or value < 0:
        raise Invalid(key, f"must be a number >= 0, got {show(value)}")
    return float(value)


def fraction(open_low: bool) -> Checker:
    """A number in (0, 1) when ``open_low``, else in [0, 1)."""

    def check(value: Any, key: str) -> float:
        low_ok = _is_number(value) and (value > 0 if open_low else value >= 0)
        if not low_ok or value >= 1:
            bounds = "(0, 1)" if open_low else "[0, 1)"
            raise Invalid(key, f"must be a number in {bounds}, got {show(value)}")
        return float(value)

    return check


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(key, f"must be true or false, got {show(value)}")
    return value


def enum(choices: tuple[str, ...]) -> Checker:
    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise Invalid(key, f"must be one of {', '.join(choices)}; got {show(value)}")
        return value

    return check


def text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise Invalid(key, f"must be a non-empty one-line string, got {show(value)}")
    return value


def lang(value: Any, key: str) -> str:
    if not isinstance(value, str) or not LANG_PATTERN.match(value):
        raise Invalid(key, f"must be a language code like \"fra\" or \"cmn_Hant\", got {show(value)}")
    return value


def device(value: Any, key: str) -> str | int:
    if is_int(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip() and "\n" not in value:
        return value
    raise Invalid(key, f"must be \"default\", a device name substring or an index >= 0, got {show(value)}")


def octal_mode(value: Any, key: str) -> int:
    if not isinstance(value, str) or not OCTAL_MODE_PATTERN.match(value):
        raise Invalid(key, f"must be a quoted octal permission string like \"0660\", got {show(value)}")
    return int(value, 8)


def absolute_path(value: Any, key: str) -> Path:
    path = Path(text(value, key))
    if not path.is_absolute():
        raise Invalid(key, f"must be an absolute path, got {show(value)}")
    return path


def socket_path(value: Any, key: str) -> str:
    name = str(absolute_path(value, key))
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > UNIX_SOCKET_PATH_MAX:
        raise Invalid(key, f"is {size} bytes, longer than the {UNIX_SOCKET_PATH_MAX}-byte UNIX socket limit")
    return value


def path(value: Any, key: str) -> Path:
    return Path(text(value, key))


def check_keys(data: Mapping[Any, Any], allowed: Mapping[str, Any], prefix: str) -> None:
    for key in data:
        if not isinstance(key, str) or key not in allowed:
            raise Invalid(f"{prefix}{key}", f"unknown key (allowed: {', '.join(allowed)})")


def mapping(cls: type, checkers: Mapping[str, Checker]) -> Checker:
    """A nested mapping of keys (e.g. ``streaming.overlap``), checked key by key into ``cls``."""

    def check(value: Any, key: str) -> Any:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise Invalid(key, f"must be a mapping of keys, got {show(value)}")
        check_keys(value, checkers, f"{key}.")
        return cls(**{name: checkers[name](item, f"{key}.{name}") for name, item in value.items()})

    return check
