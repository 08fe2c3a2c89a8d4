"""Wire format: the one encode/decode path and line framing."""

from __future__ import annotations

import json

import pytest
from seamless_daemon.control.protocol import (
    ErrorCode,
    Event,
    LineReader,
    ProtocolError,
    Request,
    Response,
    decode,
    decode_request,
    encode,
)


def test_round_trip_of_every_message_kind() -> None:
    messages = [
        Request(id="a1", cmd="set", args={"speaker": 2}),
        Request(id=7, cmd="status"),
        Response.success(7, {"state": "idle", "nested": {"x": [1, 2]}}),
        Response.failure("a1", ErrorCode.REFUSED, "not now"),
        Response.failure(None, ErrorCode.TOO_LARGE, "too big"),
        Event("text", {"text": "salut", "text_ids": [4, 5], "target_lang": "fra"}),
    ]
    for message in messages:
        line = encode(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert decode(line) == message


def test_wire_shapes_match_the_documented_format() -> None:
    assert json.loads(encode(Request(id=1, cmd="swap"))) == {"v": 1, "id": 1, "cmd": "swap", "args": {}}
    assert json.loads(encode(Response.failure(3, ErrorCode.BUSY, "a\nb"))) == {
        "v": 1, "id": 3, "ok": False, "error": {"code": "busy", "message": "a b"}}
    assert json.loads(encode(Event("state", {"state": "idle"}))) == {"v": 1, "event": "state", "state": "idle"}


def test_event_cannot_shadow_reserved_keys() -> None:
    with pytest.raises(ValueError, match="reserved"):
        encode(Event("state", {"event": "x"}))


def test_nan_is_not_encoded() -> None:
    with pytest.raises(ValueError):
        encode(Response.success(1, {"x": float("nan")}))


@pytest.mark.parametrize(
    ("line", "code", "fragment"),
    [
        (b"\xff\xfe{}", ErrorCode.BAD_REQUEST, "not valid UTF-8"),
        (b"{not json", ErrorCode.BAD_REQUEST, "not valid JSON"),
        (b"[1, 2]", ErrorCode.BAD_REQUEST, "must be a JSON object, got list"),
        (b'"status"', ErrorCode.BAD_REQUEST, "must be a JSON object, got str"),
        (b'{"v": 1, "cmd": "status"}', ErrorCode.BAD_REQUEST, 'field "id" is missing'),
        (b'{"v": 1, "id": true, "cmd": "status"}', ErrorCode.BAD_REQUEST, 'field "id" must be'),
        (b'{"v": 1, "id": 1, "cmd": 5}', ErrorCode.BAD_REQUEST, 'field "cmd" must be'),
        (b'{"v": 1, "id": 1, "cmd": "status", "args": []}', ErrorCode.BAD_REQUEST, 'field "args" must be'),
        (b'{"v": 1, "id": 1, "cmd": "status", "x": 1}', ErrorCode.BAD_REQUEST, 'unknown request field "x"'),
        (b'{"id": 1, "cmd": "status"}', ErrorCode.BAD_REQUEST, 'field "v" is missing'),
        (b'{"v": 2, "id": 1, "cmd": "status"}', ErrorCode.UNSUPPORTED_VERSION, "version 2"),
        (b'{"v": 1, "id": 1}', ErrorCode.BAD_REQUEST, 'none of "cmd", "ok", "event"'),
        (b'{"v": 1, "id": 1, "cmd": "x", "args": {"n": NaN}}', ErrorCode.BAD_REQUEST, "not valid JSON"),
        (b"[" * 100000 + b"]" * 100000, ErrorCode.BAD_REQUEST, "JSON"),
    ],
)
def test_decode_errors_carry_code_and_one_line_message(line: bytes, code: ErrorCode, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(line)
    assert info.value.code is code
    assert fragment in info.value.message
    assert "\n" not in info.value.message


def test_request_id_is_kept_on_errors_after_the_id() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(b'{"v": 9, "id": "abc", "cmd": "status"}')
    assert info.value.request_id == "abc"
    assert Response.from_error(info.value).id == "abc"


def test_decode_request_rejects_other_message_kinds() -> None:
    with pytest.raises(ProtocolError, match="expected a request"):
        decode_request(encode(Event("state", {"state": "idle"})))


def _reader(data: bytes, max_bytes: int, chunk: int = 7) -> LineReader:
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]

    def recv(size: int) -> bytes:
        return chunks.pop(0) if chunks else b""

    return LineReader(recv, max_bytes, chunk_bytes=chunk)


def test_line_reader_splits_lines_across_chunks() -> None:
    reader = _reader(b"one\ntwo\n\nthree", max_bytes=10)
    assert reader.read_line().line == b"one"
    assert reader.read_line().line == b"two"
    assert reader.read_line().line == b""
    # "three" has no newline: the peer left mid-message, so it is dropped.
    assert reader.read_line().eof


def test_line_reader_reports_an_oversized_line_once_and_recovers() -> None:
    reader = _reader(b"ok\n" + b"x" * 100 + b"\nafter\n", max_bytes=10)
    assert reader.read_line().line == b"ok"
    big = reader.read_line()
    assert big.too_large and big.line == b""
    assert reader.read_line().line == b"after"
    assert reader.read_line().eof


def test_line_reader_accepts_a_line_of_exactly_the_limit() -> None:
    reader = _reader(b"x" * 10 + b"\n" + b"y" * 11 + b"\n", max_bytes=10, chunk=64)
    assert reader.read_line().line == b"x" * 10
    assert reader.read_line().too_large


def test_numpy_values_are_encoded_as_plain_json() -> None:
    import numpy as np

    line = encode(Response.success(1, {"ids": np.array([1, 2], dtype=np.int64), "n": np.int64(3),
                                       "t": np.float32(0.5)}))
    assert json.loads(line)["result"] == {"ids": [1, 2], "n": 3, "t": 0.5}
    with pytest.raises(TypeError, match="object is not JSON-encodable"):
        encode(Response.success(1, {"x": object()}))
