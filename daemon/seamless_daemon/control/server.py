"""Control server: a UNIX stream socket, one thread per connection.

* The socket is bound at ``control.socket`` with ``control.mode`` and ``control.group``, a stale socket file
  is replaced, and a live one (another daemon) is an error. Under systemd socket activation
  (``LISTEN_PID``/``LISTEN_FDS``) the inherited fd 3 is used instead and left as systemd made it.
* Each peer is checked with ``SO_PEERCRED``: uid 0, the daemon's own uid and members of ``control.group``
  are served; anyone else gets one ``refused`` line and is closed.
* At most ``control.max_clients`` connections are served at once; the next one gets one ``busy`` line.
* Requests are framed by :class:`LineReader`; every bad line is answered and the connection goes on.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import select
import socket
import stat
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from seamless_daemon.config import ControlConfig
from seamless_daemon.control.commands import CommandTable
from seamless_daemon.control.events import EventSubscription
from seamless_daemon.control.protocol import (
    ErrorCode,
    Event,
    LineReader,
    Message,
    ProtocolError,
    Response,
    decode_request,
    encode,
)

logger = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3
LISTEN_BACKLOG = 64
ACCEPT_POLL_S = 0.25
EVENT_POLL_S = 0.5
SEND_TIMEOUT_S = 30.0
REJECT_SEND_TIMEOUT_S = 1.0
JOIN_TIMEOUT_S = 5.0
PEERCRED_FORMAT = "iII"  # struct ucred: pid_t, uid_t, gid_t
PEER_PROBE_BYTES = 4096
DROPPED_EVENT = "dropped"


class ControlServerError(Exception):
    """The control socket cannot be set up; the message is one line naming the socket."""


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


def peer_credentials(conn: socket.socket) -> PeerCredentials:
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(PEERCRED_FORMAT))
    pid, uid, gid = struct.unpack(PEERCRED_FORMAT, raw)
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


@dataclass(frozen=True)
class PeerPolicy:
    """Who may talk to the daemon: root, the daemon's own uid, and members of ``group_id`` (when set)."""

    own_uid: int
    group_id: int | None = None

    def allows(self, peer: PeerCredentials) -> bool:
        if peer.uid in (0, self.own_uid):
            return True
        if self.group_id is None:
            return False
        if peer.gid == self.group_id:
            return True
        try:
            name = pwd.getpwuid(peer.uid).pw_name
        except KeyError:
            return False
        return self.group_id in os.getgrouplist(name, peer.gid)


def resolve_group(name: str | None, socket_path: str) -> int | None:
    if name is None:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ControlServerError(f"{socket_path}: control.group {name!r} does not exist") from None


def activated_socket() -> socket.socket | None:
    """The listening socket systemd passed (``LISTEN_PID`` is this process, ``LISTEN_FDS`` >= 1), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if count < 1:
        return None
    try:
        sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    except OSError as exc:
        raise ControlServerError(f"socket activation: fd {SD_LISTEN_FDS_START} is unusable: {exc.strerror}") from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ControlServerError(f"socket activation: fd {SD_LISTEN_FDS_START} is not a UNIX stream socket")
    os.set_inheritable(sock.fileno(), False)
    return sock


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlServerError(f"{path}: exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        logger.info("removing stale control socket %s", path)
        os.unlink(path)
        return
    except OSError as exc:
        raise ControlServerError(f"{path}: cannot probe existing socket: {exc.strerror}") from None
    finally:
        probe.close()
    raise ControlServerError(f"{path}: another process is already listening on this socket")


def bind_socket(settings: ControlConfig, group_id: int | None) -> socket.socket:
    """Bind and listen at ``settings.socket`` with its mode and group (set before listen: no race)."""
    path = settings.socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(path)
        sock.bind(path)
        os.chmod(path, settings.mode)
        if group_id is not None:
            os.chown(path, -1, group_id)
        sock.listen(LISTEN_BACKLOG)
    except ControlServerError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise ControlServerError(f"{path}: cannot create control socket: {exc.strerror or exc}") from None
    return sock


class _Connection:
    """One client socket with bounded reads and serialized, time-limited writes."""

    def __init__(self, sock: socket.socket, max_message_bytes: int, stopping: threading.Event) -> None:
        self.sock = sock
        self._stopping = stopping
        self._write_lock = threading.Lock()
        sock.settimeout(SEND_TIMEOUT_S)
        self.reader = LineReader(self._recv, max_message_bytes)

    def _recv(self, size: int) -> bytes:
        while not self._stopping.is_set():
            try:
                return self.sock.recv(size)
            except TimeoutError:
                continue
            except OSError as exc:
                logger.debug("control connection read failed: %s", exc)
                return b""
        return b""

    def send(self, message: Message) -> bool:
        """Write one message; False when the peer is gone."""
        try:
            data = encode(message)
        except (TypeError, ValueError) as exc:
            logger.error("cannot encode control message: %s", exc)
            data = encode(Response.failure(getattr(message, "id", None), ErrorCode.INTERNAL,
                                           f"result is not JSON-encodable: {exc}"))
        with self._write_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                logger.debug("control connection write failed: %s", exc)
                return False
        return True

    def peer_closed(self) -> bool:
        """True when the peer has hung up (input after ``subscribe`` is read and ignored)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return False
            return self.sock.recv(PEER_PROBE_BYTES) == b""
        except OSError:
            return True


class ControlServer:
    """Serves a :class:`CommandTable` on the control socket. ``start()`` binds, ``stop()`` tears down."""

    def __init__(self, table: CommandTable, settings: ControlConfig) -> None:
        self._table = table
        self._settings = settings
        self._policy = PeerPolicy(own_uid=os.getuid(), group_id=resolve_group(settings.group, settings.socket))
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._bound_inode: int | None = None

    @property
    def socket_path(self) -> str:
        return self._settings.socket

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def start(self) -> None:
        listener = activated_socket()
        if listener is None:
            listener = bind_socket(self._settings, self._policy.group_id)
            self._bound_inode = os.stat(self._settings.socket).st_ino
            logger.info("control socket listening at %s", self._settings.socket)
        else:
            logger.info("control socket received from systemd (fd %d)", SD_LISTEN_FDS_START)
        listener.settimeout(ACCEPT_POLL_S)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(listener,), name="control-accept",
                                               daemon=True)
        self._accept_thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection, wait for handlers, remove the socket file if bound here."""
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(JOIN_TIMEOUT_S)
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                logger.debug("shutdown of a control connection failed: %s", exc)
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("control handler %s still running at shutdown", thread.name)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._unlink_own_socket()

    def _unlink_own_socket(self) -> None:
        if self._bound_inode is None:
            return
        inode, self._bound_inode = self._bound_inode, None
        try:
            if os.stat(self._settings.socket).st_ino == inode:
                os.unlink(self._settings.socket)
        except FileNotFoundError:
            logger.debug("control socket %s was already removed", self._settings.socket)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                logger.warning("control accept failed: %s", exc)
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._stopping.wait(ACCEPT_POLL_S)
                continue
            self._admit(conn)

    def _reject(self, conn: socket.socket, code: ErrorCode, message: str) -> None:
        try:
            conn.settimeout(REJECT_SEND_TIMEOUT_S)
            conn.sendall(encode(Response.failure(None, code, message)))
        except OSError as exc:
            logger.debug("could not send rejection: %s", exc)
        finally:
            conn.close()

    def _admit(self, conn: socket.socket) -> None:
        try:
            peer = peer_credentials(conn)
        except OSError as exc:
            logger.warning("cannot read control peer credentials: %s", exc)
            self._reject(conn, ErrorCode.REFUSED, "peer credentials unavailable")
            return
        if not self._policy.allows(peer):
            logger.warning("refused control connection from uid %d (pid %d)", peer.uid, peer.pid)
            self._reject(conn, ErrorCode.REFUSED, f"uid {peer.uid} is not allowed to control this daemon")
            return
        with self._lock:
            if len(self._connections) >= self._settings.max_clients:
                full = True
            else:
                full = False
                self._connections.add(conn)
                thread = threading.Thread(target=self._serve, args=(conn, peer), name=f"control-{peer.pid}",
                                          daemon=True)
                self._threads.add(thread)
        if full:
            logger.warning("control connection from pid %d turned away: %d clients", peer.pid,
                           self._settings.max_clients)
            self._reject(conn, ErrorCode.BUSY, f"too many control clients (limit {self._settings.max_clients})")
            return
        thread.start()

    def _serve(self, sock: socket.socket, peer: PeerCredentials) -> None:
        logger.debug("control client connected: pid %d uid %d", peer.pid, peer.uid)
        try:
            self._handle(_Connection(sock, self._settings.max_message_bytes, self._stopping))
        except Exception:  # the handler must never take the server down with it
            logger.exception("control connection handler failed")
        finally:
            sock.close()
            with self._lock:
                self._connections.discard(sock)
                self._threads.discard(threading.current_thread())
            logger.debug("control client gone: pid %d", peer.pid)

    def _handle(self, conn: _Connection) -> None:
        while not self._stopping.is_set():
            read = conn.reader.read_line()
            if read.eof:
                return
            if read.too_large:
                reply = Response.failure(None, ErrorCode.TOO_LARGE,
                                         f"message longer than {self._settings.max_message_bytes} bytes")
                if not conn.send(reply):
                    return
                continue
            if not read.line.strip():
                continue
            try:
                request = decode_request(read.line)
            except ProtocolError as exc:
                if not conn.send(Response.from_error(exc)):
                    return
                continue
            outcome = self._table.dispatch(request)
            if not conn.send(outcome.response):
                if outcome.subscription is not None:
                    outcome.subscription.close()
                return
            if outcome.subscription is not None:
                self._stream_events(conn, outcome.subscription)
                return

    def _stream_events(self, conn: _Connection, subscription: EventSubscription) -> None:
        reported_drops = 0
        try:
            while not self._stopping.is_set() and not subscription.closed:
                event = subscription.get(EVENT_POLL_S)
                if conn.peer_closed():
                    return
                dropped = subscription.dropped
                if dropped > reported_drops:
                    if not conn.send(Event(DROPPED_EVENT, {"count": dropped - reported_drops})):
                        return
                    reported_drops = dropped
                if event is not None and not conn.send(event):
                    return
        finally:
            subscription.close()
