"""``seamlessctl``: command-line control of a running seamless-daemon over its UNIX socket."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from seamless_daemon.config import DEFAULT_SOCKET, MODES, STREAMING_POLICIES
from seamless_daemon.control.client import (
    SOCKET_ENV,
    ControlClient,
    ControlClientError,
    DaemonNotRunning,
    SocketPermissionError,
)
from seamless_daemon.control.commands import RECORD_ACTIONS, STREAM_ACTIONS
from seamless_daemon.control.protocol import ErrorCode, Event, Response
from seamless_daemon.control.wav import AudioDecodeError, decode_pcm16_b64, wav_bytes

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BAD_REQUEST = 2
EXIT_REFUSED = 3
EXIT_NOT_RUNNING = 4
EXIT_ERROR = 5
EXIT_CODES = {
    ErrorCode.BAD_REQUEST: EXIT_BAD_REQUEST,
    ErrorCode.UNKNOWN_COMMAND: EXIT_BAD_REQUEST,
    ErrorCode.TOO_LARGE: EXIT_BAD_REQUEST,
    ErrorCode.UNSUPPORTED_VERSION: EXIT_BAD_REQUEST,
    ErrorCode.REFUSED: EXIT_REFUSED,
    ErrorCode.BUSY: EXIT_REFUSED,
    ErrorCode.INTERNAL: EXIT_ERROR,
}
DEFAULT_TIMEOUT_S = 10.0
TRANSLATE_TIMEOUT_S = 120.0
PROG = "seamlessctl"

EPILOG = f"""\
exit codes:
  0  success
  2  bad request or usage error (also unknown_command, too_large, unsupported_version)
  3  refused by the daemon (also busy; and permission denied on the socket)
  4  daemon not running (no socket, or nobody listening)
  5  internal or other error (timeouts included)

The socket defaults to ${SOCKET_ENV}, else {DEFAULT_SOCKET}.
"""


class UsageError(Exception):
    """A local problem with the command line or its files (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Control a running seamless-daemon.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", help="control socket path")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help=f"seconds to wait for an answer ({DEFAULT_TIMEOUT_S:g}; "
                             f"translate {TRANSLATE_TIMEOUT_S:g})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("status", help="show the daemon's state")
    record = sub.add_parser("record", help="start, stop or cancel a recording")
    record.add_argument("action", choices=RECORD_ACTIONS)
    stream = sub.add_parser("stream", help="start or stop streaming (continuous) translation")
    stream.add_argument("action", choices=STREAM_ACTIONS)
    options = sub.add_parser("set", help="change translation options")
    options.add_argument("--target-lang", metavar="L")
    options.add_argument("--source-lang", metavar="L")
    options.add_argument("--speaker", type=int, metavar="N")
    options.add_argument("--mode", choices=MODES)
    options.add_argument("--policy", choices=STREAMING_POLICIES, help="streaming policy")
    sub.add_parser("swap", help="swap source and target languages")
    sub.add_parser("reload", help="re-read the configuration file")
    translate = sub.add_parser("translate", help="translate a WAV file through the daemon")
    translate.add_argument("input", type=Path, metavar="IN.wav")
    translate.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.wav")
    translate.add_argument("--tgt-lang", "--target-lang", dest="target_lang", metavar="L")
    translate.add_argument("--speaker", type=int, metavar="N")
    sub.add_parser("subscribe", help="print daemon events as they happen")
    sub.add_parser("ping", help="check that the daemon answers")
    sub.add_parser("version", help="show the daemon and protocol versions")
    return parser


def _request_args(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.command in ("record", "stream"):
        return {"action": ns.action}
    if ns.command == "set":
        picked = {"target_lang": ns.target_lang, "source_lang": ns.source_lang, "speaker": ns.speaker,
                  "mode": ns.mode, "policy": ns.policy}
        return {key: value for key, value in picked.items() if value is not None}
    if ns.command == "translate":
        try:
            data = ns.input.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {ns.input}: {exc.strerror or exc}") from None
        args: dict[str, Any] = {"audio_b64": base64.b64encode(data).decode("ascii")}
        if ns.target_lang is not None:
            args["target_lang"] = ns.target_lang
        if ns.speaker is not None:
            args["speaker"] = ns.speaker
        return args
    return {}


def _flatten(result: Mapping[str, Any], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for key, value in result.items():
        if isinstance(value, Mapping):
            lines.extend(_flatten(value, f"{prefix}{key}."))
        else:
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines.append(f"{prefix}{key}: {shown}")
    return lines


def _print_result(result: Mapping[str, Any], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        out.writelines(line + "\n" for line in _flatten(result))


def _write_translation(result: Mapping[str, Any], output: Path) -> dict[str, Any]:
    """Save the returned audio; the printed result drops the bulky audio in favour of the file name."""
    try:
        samples = decode_pcm16_b64(str(result.get("audio_b64", "")))
        rate = int(result["sample_rate"])
        output.write_bytes(wav_bytes(samples, rate))
    except (AudioDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ControlClientError(f"unusable translate result: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    shown = {key: value for key, value in result.items() if key != "audio_b64"}
    shown["output"] = str(output)
    return shown


def _format_event(event: Event, as_json: bool) -> str:
    if as_json:
        return json.dumps({"event": event.name, **event.fields}, ensure_ascii=False)
    parts = [event.name] + [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in event.fields.items()]
    return " ".join(parts)


def _follow_events(client: ControlClient, as_json: bool, out: TextIO) -> int:
    try:
        for event in client.events():
            out.write(_format_event(event, as_json) + "\n")
            out.flush()
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _report_error(response: Response, as_json: bool, out: TextIO, err: TextIO) -> int:
    code = response.error.code if response.error is not None else ErrorCode.INTERNAL
    message = response.error.message if response.error is not None else "unspecified error"
    if as_json:
        out.write(json.dumps({"ok": False, "error": {"code": code.value, "message": message}}) + "\n")
    err.write(f"{PROG}: {code.value}: {message}\n")
    return EXIT_CODES.get(code, EXIT_ERROR)


def _run(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    timeout = ns.timeout if ns.timeout is not None else (
        TRANSLATE_TIMEOUT_S if ns.command == "translate" else DEFAULT_TIMEOUT_S)
    args = _request_args(ns)
    with ControlClient(ns.socket, timeout=timeout) as client:
        response = client.request(ns.command, args)
        if not response.ok:
            return _report_error(response, ns.json, out, err)
        result = response.result or {}
        if ns.command == "translate":
            result = _write_translation(result, ns.output)
        if ns.command == "subscribe":
            if not ns.json:
                err.write(f"subscribed to {client.socket_path}; Ctrl-C to stop\n")
            return _follow_events(client, ns.json, out)
        _print_result(result, ns.json, out)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        return _run(ns, out, err)
    except UsageError as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_BAD_REQUEST
    except DaemonNotRunning as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_NOT_RUNNING
    except SocketPermissionError as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_REFUSED
    except ControlClientError as exc:
        err.write(f"{PROG}: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
