"""The Unix-socket server of the control plane.

Newline-delimited JSON-RPC; socket mode 0600; each peer's uid (``SO_PEERCRED``) must be root,
the daemon's own uid, or a member of the configured group. Requests are bounded in size and
clients in idle time and number, so a bad client can neither crash nor block the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import struct
from pathlib import Path

from otus._control.jsonrpc import INVALID_REQUEST, Dispatcher, _encode, _error
from otus.errors import OtusError

log = logging.getLogger("otus.control")

CLOSE_WAIT = 2.0  # seconds close() waits for open conversations to end
_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of a Unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def unsafe_directory(path: str) -> str | None:
    """Why a socket in directory ``path`` could have been put or swapped there by a user other
    than root and us, or None when it cannot: the directory itself may not be written by others,
    and every directory on the way that sits in one others may write to (a sticky ``/tmp``)
    must belong to root or us (``/tmp/otus-1000`` made in advance by somebody else). Below
    directories only root may write to (``/run``), any owner is the administrator's choice."""
    me = os.geteuid()
    target = Path(path).resolve()
    st = target.stat()
    if st.st_mode & 0o022:
        return f"{target} may be written by other users (mode {st.st_mode & 0o7777:o})"
    for d in (target, *target.parents[:-1]):
        parent = d.parent.stat()
        if parent.st_mode & 0o022:
            if not parent.st_mode & 0o1000:
                return (
                    f"{d.parent} may be written by other users (mode {parent.st_mode & 0o7777:o})"
                )
            owner = d.stat().st_uid
            if owner not in (0, me):
                return (
                    f"{d} belongs to uid {owner} (in {d.parent}, where anyone may create entries)"
                )
    return None


def _own_directory(path: Path) -> None:
    """A socket directory of ours that others may write to and that is not sticky (a
    Kubernetes ``emptyDir`` is made 0777) loses the others' write bits: the daemon's runtime
    directory is its own. Sticky ones (``/tmp``) and other owners' are left as they are."""
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o022 and not st.st_mode & 0o1000:
        mode = st.st_mode & 0o7777
        os.chmod(path, mode & ~0o022)
        log.info("control socket directory %s: mode %o -> %o", path, mode, mode & ~0o022)


class ControlServer:
    """Serves a :class:`Dispatcher` on a Unix socket until :meth:`close`."""

    def __init__(
        self,
        path: str,
        dispatcher: Dispatcher,
        *,
        group: str | None = None,
        max_request_bytes: int = 1 << 20,
        idle_timeout: float = 30.0,
        max_clients: int = 256,
    ) -> None:
        self.path = path
        self._dispatcher = dispatcher
        try:
            self._group_gid = grp.getgrnam(group).gr_gid if group else None
        except KeyError:
            raise OtusError(f"otus.control.group: no group {group!r} on this system") from None
        self._max_request = max_request_bytes
        self._idle_timeout = idle_timeout
        self._slots = asyncio.Semaphore(max_clients)
        self._server: asyncio.AbstractServer | None = None
        # open connections: close() ends them itself, so none is still running (and cancelled
        # by asyncio.run, which Python 3.11 logs as a CancelledError traceback) after it
        self._clients: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self.rejected_peers = 0
        self.bad_requests = 0

    async def start(self) -> None:
        old_umask = None
        try:
            parent = Path(self.path).parent
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _own_directory(parent)
            unsafe = unsafe_directory(str(parent))
            if unsafe:
                raise OtusError(
                    f"not listening on the control socket {self.path}: {unsafe}, so another "
                    "user could replace the socket; choose a directory of your own "
                    "(otus.control.socket)"
                )
            old_umask = os.umask(0o177)  # the socket is created 0600, never briefly wider
            self._server = await asyncio.start_unix_server(
                self._serve, path=self.path, limit=self._max_request + 1
            )
        except OSError as exc:  # no such directory, no right, a path over 107 bytes
            raise OtusError(
                f"cannot listen on the control socket {self.path}: {exc.strerror or exc}"
            ) from None
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        os.chmod(self.path, 0o660 if self._group_gid is not None else 0o600)
        if self._group_gid is not None:
            os.chown(self.path, -1, self._group_gid)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()  # the conversation reads end-of-file and returns
            if self._clients:
                await asyncio.wait(list(self._clients.values()), timeout=CLOSE_WAIT)
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _allowed(self, uid: int, gid: int) -> bool:
        if uid in (0, os.geteuid()):
            return True
        if self._group_gid is None:
            return False
        if gid == self._group_gid:
            return True
        try:
            import pwd

            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            return False
        return name in grp.getgrgid(self._group_gid).gr_mem

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[writer] = task
        try:
            await self._serve_client(reader, writer)
        finally:
            self._clients.pop(writer, None)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sock = writer.get_extra_info("socket")
        try:
            _pid, uid, gid = peer_credentials(sock)
        except OSError:
            uid, gid = -1, -1
        if not self._allowed(uid, gid):
            self.rejected_peers += 1
            writer.write(_encode(_error(None, INVALID_REQUEST, f"permission denied for uid {uid}")))
            await _close(writer)
            return
        if self._slots.locked():
            writer.write(_encode(_error(None, -32000, "server busy: too many control clients")))
            await _close(writer)
            return
        async with self._slots:
            await self._conversation(reader, writer)

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), self._idle_timeout)
                except asyncio.TimeoutError:
                    return
                except (asyncio.LimitOverrunError, ValueError):
                    self.bad_requests += 1
                    msg = f"invalid request: larger than {self._max_request} bytes"
                    writer.write(_encode(_error(None, INVALID_REQUEST, msg)))
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                answer = await self._dispatcher.handle_line(line)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
        except (ConnectionError, BrokenPipeError):
            return
        finally:
            await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)
