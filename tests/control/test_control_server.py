"""Control server over real UNIX sockets: framing, bad input, limits, peers, lifecycle."""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import start_server
from control_fakes import WAIT_S, FakeControl, LineClient, wait_until, wav_file_bytes
from seamless_daemon.config import ControlConfig
from seamless_daemon.control.server import ControlServer, ControlServerError

NOBODY_UID = 65534
NOBODY_GROUP = "nogroup"
BIG_LINE_BYTES = 20 * 1024 * 1024


def test_status_and_socket_mode(server: ControlServer, settings: ControlConfig) -> None:
    mode = os.stat(settings.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    client = LineClient(settings.socket)
    reply = client.request("status", request_id="s1")
    assert reply == {"v": 1, "id": "s1", "ok": True, "result": {"state": "idle", "target_lang": "fra",
                     "source_lang": "eng", "speaker": 0, "mode": "complete"}}
    client.close()


def test_several_clients_at_once(server: ControlServer, settings: ControlConfig) -> None:
    clients = [LineClient(settings.socket) for _ in range(6)]
    for index, client in enumerate(clients):  # all connected together, each served in turn
        assert client.request("ping", request_id=index)["result"] == {"pong": True}
    wait_until(lambda: server.client_count == len(clients), "all clients registered")
    errors: list[BaseException] = []

    def hammer(client: LineClient, worker: int) -> None:
        try:
            for n in range(25):
                reply = client.request("status", request_id=f"{worker}-{n}")
                assert reply["ok"] and reply["id"] == f"{worker}-{n}"
        except BaseException as exc:  # noqa: BLE001 (collected and re-raised in the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(c, i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert errors == []
    for client in clients:
        client.close()
    wait_until(lambda: server.client_count == 0, "clients to be released")


@pytest.mark.parametrize(
    ("line", "code", "fragment"),
    [
        (b"{bad json\n", "bad_request", "not valid JSON"),
        (b"[1, 2, 3]\n", "bad_request", "must be a JSON object"),
        (b"\xc3\x28\xff\n", "bad_request", "not valid UTF-8"),
        (b'{"v": 1, "cmd": "status"}\n', "bad_request", 'field "id" is missing'),
        (b'{"v": 3, "id": 9, "cmd": "status"}\n', "unsupported_version", "version 3"),
        (b'{"v": 1, "id": 9, "cmd": "frobnicate"}\n', "unknown_command", '"frobnicate"'),
        (b'{"v": 1, "id": 9, "cmd": "set", "args": {"speaker": "two"}}\n', "bad_request", '"speaker"'),
        (b'{"v": 1, "id": 9, "cmd": "record", "args": {"action": 5}}\n', "bad_request", '"action"'),
    ],
)
def test_bad_input_is_answered_and_the_connection_goes_on(server: ControlServer, settings: ControlConfig,
                                                          line: bytes, code: str, fragment: str) -> None:
    client = LineClient(settings.socket)
    client.send(line)
    reply = client.read()
    assert reply["ok"] is False and reply["error"]["code"] == code
    assert fragment in reply["error"]["message"]
    assert client.request("status", request_id="after")["ok"] is True
    client.close()


def test_a_20_mb_line_is_too_large_and_the_connection_goes_on(server: ControlServer,
                                                              settings: ControlConfig) -> None:
    client = LineClient(settings.socket)
    sender = threading.Thread(target=client.send, args=(b"x" * BIG_LINE_BYTES + b"\n",))
    sender.start()
    reply = client.read()
    sender.join(WAIT_S)
    assert reply["ok"] is False and reply["error"]["code"] == "too_large"
    assert reply["id"] is None
    assert str(settings.max_message_bytes) in reply["error"]["message"]
    assert client.request("status", request_id="after")["ok"] is True
    client.close()


def test_random_binary_garbage(server: ControlServer, settings: ControlConfig) -> None:
    garbage = random.Random(20240611).randbytes(200_000)
    client = LineClient(settings.socket)
    # Sent from a thread while this one reads: each garbage line gets an answer the client must drain.
    status = b'{"v": 1, "id": "after", "cmd": "status"}\n'
    sender = threading.Thread(target=client.send, args=(garbage + b"\n" + status,))
    sender.start()
    answers = []
    while True:
        reply = client.read()
        if reply.get("id") == "after":
            break
        answers.append(reply)
    sender.join(WAIT_S)
    assert reply["ok"] is True
    assert answers, "garbage lines were not answered"
    assert all(not a["ok"] and a["error"]["code"] == "bad_request" for a in answers)
    client.close()


def test_disconnect_mid_message_then_a_new_client_works(server: ControlServer, settings: ControlConfig) -> None:
    for partial in (b'{"v": 1, "id": 1, "cmd": "sta', b"x" * 100_000):
        client = LineClient(settings.socket)
        client.send(partial)
        client.close()
    wait_until(lambda: server.client_count == 0, "half-sent connections to be dropped")
    fresh = LineClient(settings.socket)
    assert fresh.request("status")["ok"] is True
    fresh.close()


def test_excess_clients_get_busy(control: FakeControl, settings: ControlConfig) -> None:
    srv = start_server(control, settings, max_clients=2)
    try:
        held = [LineClient(settings.socket) for _ in range(2)]
        for client in held:
            assert client.request("ping")["ok"]
        extra = LineClient(settings.socket)
        reply = extra.read()
        assert reply["ok"] is False and reply["error"]["code"] == "busy"
        assert extra.at_eof()
        held[0].close()
        wait_until(lambda: srv.client_count == 1, "a slot to free up")
        again = LineClient(settings.socket)
        assert again.request("ping")["ok"]
        for client in (held[1], extra, again):
            client.close()
    finally:
        srv.stop()


def test_translate_over_the_socket(server: ControlServer, settings: ControlConfig, control: FakeControl) -> None:
    samples = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    audio_b64 = base64.b64encode(wav_file_bytes(samples, 16000)).decode()
    client = LineClient(settings.socket)
    reply = client.request("translate", {"audio_b64": audio_b64, "target_lang": "spa"})
    assert reply["ok"] is True and reply["result"]["text"] == "bonjour"
    assert control.calls[-1][1]["target_lang"] == "spa"
    client.close()


def test_subscribe_streams_events_until_the_client_leaves(server: ControlServer, settings: ControlConfig,
                                                          control: FakeControl) -> None:
    client = LineClient(settings.socket)
    assert client.request("subscribe", {"queue_max": 8})["result"] == {"subscribed": True, "queue_max": 8}
    control.bus.publish("state", state="recording")
    control.bus.publish("text", text="salut", text_ids=[7], target_lang="fra")
    assert client.read() == {"v": 1, "event": "state", "state": "recording"}
    assert client.read() == {"v": 1, "event": "text", "text": "salut", "text_ids": [7], "target_lang": "fra"}
    assert control.bus.subscriber_count == 1
    client.close()
    wait_until(lambda: control.bus.subscriber_count == 0, "the subscription to close")
    wait_until(lambda: server.client_count == 0, "the subscriber connection to end")


def test_stop_closes_connections_and_removes_the_socket(control: FakeControl, settings: ControlConfig) -> None:
    srv = start_server(control, settings)
    client = LineClient(settings.socket)
    assert client.request("ping")["ok"]
    srv.stop()
    assert client.at_eof()
    assert not os.path.exists(settings.socket)
    client.close()


def test_stale_socket_is_replaced(control: FakeControl, settings: ControlConfig) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(settings.socket)
    stale.close()  # the file stays, nobody listens
    srv = start_server(control, settings)
    try:
        assert LineClient(settings.socket).request("ping")["ok"]
    finally:
        srv.stop()


def test_live_socket_and_regular_file_are_not_replaced(control: FakeControl, settings: ControlConfig) -> None:
    srv = start_server(control, settings)
    try:
        with pytest.raises(ControlServerError, match="another process is already listening"):
            start_server(control, settings)
    finally:
        srv.stop()
    Path(settings.socket).write_text("keep me")
    with pytest.raises(ControlServerError, match="exists and is not a socket"):
        start_server(control, settings)
    assert Path(settings.socket).read_text() == "keep me"


def test_unknown_group_is_an_error(control: FakeControl, settings: ControlConfig) -> None:
    with pytest.raises(ControlServerError, match="control.group 'no-such-group-x' does not exist"):
        start_server(control, settings, group="no-such-group-x")


def _ask_as_nobody(path: str) -> dict:
    """Fork, drop to uid/gid nobody, send one status request; the child reports the reply through a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only plain syscalls, then _exit
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY_UID)
            os.setuid(NOBODY_UID)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(WAIT_S)
            sock.connect(path)
            try:
                sock.sendall(b'{"v": 1, "id": 1, "cmd": "status"}\n')
            except BrokenPipeError:
                sock.shutdown(socket.SHUT_WR)  # refused before the request went out: the answer is queued
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            os.write(write_fd, data or b'{"eof": true}\n')
            code = 0
        except BaseException as exc:  # noqa: BLE001 (report anything to the parent, never return into pytest)
            os.write(write_fd, json.dumps({"child_error": repr(exc)}).encode() + b"\n")
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(output.split(b"\n", 1)[0])


@pytest.fixture
def open_dir(sock_dir: Path) -> Path:
    sock_dir.chmod(0o755)  # let uid nobody reach the socket, so the peer check is what decides
    return sock_dir


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another uid")
def test_other_uid_is_refused_without_a_group(control: FakeControl, settings: ControlConfig, open_dir: Path) -> None:
    srv = start_server(control, settings, mode=0o666)
    try:
        reply = _ask_as_nobody(settings.socket)
        assert reply.get("ok") is False and reply["error"]["code"] == "refused", reply
        assert f"uid {NOBODY_UID}" in reply["error"]["message"]
        assert control.calls == []
    finally:
        srv.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another uid")
def test_member_of_the_allowed_group_is_served(control: FakeControl, settings: ControlConfig,
                                               open_dir: Path) -> None:
    srv = start_server(control, settings, mode=0o660, group=NOBODY_GROUP)
    try:
        assert os.stat(settings.socket).st_gid == NOBODY_UID
        reply = _ask_as_nobody(settings.socket)
        assert reply.get("ok") is True, reply
    finally:
        srv.stop()


ACTIVATED_CHILD = r"""
import os, socket, sys
from seamless_daemon.config import ControlConfig
from seamless_daemon.control.commands import CommandTable
from seamless_daemon.control.server import ControlServer
real_path, config_path = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(real_path)
listener.listen(8)
fd = listener.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
class Control:
    def status(self):
        return {"state": "activated"}
server = ControlServer(CommandTable(Control()), ControlConfig(socket=config_path))
server.start()
print("ready", os.path.exists(config_path), "LISTEN_FDS" in os.environ, flush=True)
sys.stdin.readline()
server.stop()
print("stopped", os.path.exists(real_path), flush=True)
"""


def test_systemd_socket_activation_uses_fd_3(sock_dir: Path) -> None:
    real_path, config_path = str(sock_dir / "activated.sock"), str(sock_dir / "configured.sock")
    child = subprocess.Popen([sys.executable, "-c", ACTIVATED_CHILD, real_path, config_path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().split() == ["ready", "False", "False"]
        client = LineClient(real_path)
        assert client.request("status")["result"] == {"state": "activated"}
        client.close()
        child.stdin.write("\n")
        child.stdin.flush()
        # The activated socket belongs to systemd: stopping must not unlink it.
        assert child.stdout.readline().split() == ["stopped", "True"]
        assert child.wait(WAIT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_pipelined_requests_are_answered_in_order(server: ControlServer, settings: ControlConfig) -> None:
    client = LineClient(settings.socket)
    client.send(b"".join(json.dumps({"v": 1, "id": n, "cmd": "ping"}).encode() + b"\n" for n in range(50)))
    assert [client.read()["id"] for _ in range(50)] == list(range(50))
    client.close()


def test_unencodable_result_is_internal_and_the_connection_goes_on(server: ControlServer, settings: ControlConfig,
                                                                   control: FakeControl) -> None:
    control.status = lambda: {"bad": object()}  # type: ignore[method-assign]
    client = LineClient(settings.socket)
    reply = client.request("status", request_id="s")
    assert reply["id"] == "s" and reply["error"]["code"] == "internal"
    assert "not JSON-encodable" in reply["error"]["message"]
    assert client.request("ping")["ok"] is True
    client.close()
