"""The helper process: ``python -m budget_state.helper serve KEY``.

One process per key, listening on 127.0.0.1 (bash can reach TCP with builtins, not a Unix
socket), with the hook's modules imported. :data:`_SPARES` children, forked ahead, wait in
``accept``; the one that gets a connection tells the parent (which forks its replacement), greets,
reads the request, becomes the event's process (environment, working directory, time zone) and
runs ``budget_state.hook.main`` on it, then exits. So a slow or stuck event never holds up
another, no fork is on the way to an answer, and nothing one event does stays behind for the next.
A request the child cannot read (a bad token, a stall, an environment it cannot see) is dropped
by closing the connection: the client sees the end at once and runs the hook itself.
"""

from __future__ import annotations

import errno
import fcntl
import hmac
import io
import os
import secrets
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Final

from .. import _ledger
from . import IDLE_ENV, IDLE_SECONDS, SUFFIX, Endpoint, helper_dir, read_endpoint

_SPARES: Final = 2  # children already forked and waiting: Claude Code may fire hooks side by side
_TICK: Final = 5.0  # seconds between checks that the endpoint is still ours and the idle limit
_REAP: Final = 1.0  # seconds between collections of ended children (a spare that died is replaced)
_READ_TIMEOUT: Final = 10.0  # the client sends its whole request at once; a stalled one is dropped
_MAX_REQUEST: Final = 64 * 1024 * 1024  # a tool input can be large; more than this is not an event
# Imported before forking, so that a child pays for none of it. Not rich (the live view), not the
# orchestrator or the CLI: no hook event reaches them.
_WARM: Final = (
    "budget_state.hook",
    "budget_state._runs",
    "budget_state._api",
    "budget_state._accounting",
    "budget_state._budgets",
    "budget_state._commands",
    "budget_state._config",
    "budget_state._hooklog",
    "budget_state._ledger",
    "budget_state._limits",
    "budget_state._lock",
    "budget_state._model",
    "budget_state._render",
    "budget_state._runlog",
    "budget_state._toml",
    "budget_state._units",
    "budget_state._windows",
    "budget_state._wiring",  # /budget reports wiring problems
    "budget_state.forecast",
    "budget_state.pricing",
    "budget_state._tomlparts",
    "budget_state.orchestrator._scope",
    "budget_state.team.config",  # every config load asks it whether team keys are there
    "budget_state.team.hook",  # without its database client (see _WARM_TEAM)
    "filelock",
    "tomli_w",
    "yaml",
    "zoneinfo",
    "uuid",
    "unicodedata",
    "traceback",
    "tomllib",
    "tomli",
    "pickle",
    "encodings.utf_8_sig",  # settings.json is read BOM-tolerant
)


#: Imported once a child has needed them (a project with team budgets): the database client is
#: ~15 MB that every fork would otherwise carry (measured: fork and exit of the helper 4.0 → 5.5 ms).
_WARM_TEAM: Final = ("budget_state.team.db",)
_TEAM_USED: Final = b"team"  # what a child writes on the used pipe when it imported them itself


def _warm(names: tuple[str, ...] = _WARM) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (an optional part, e.g. the team extra, not installed)
            pass


def code_signature() -> tuple[tuple[str, int, int], ...]:
    """What the code on disk is: every file of the package (path, size, mtime) and the interpreter.

    Compared before each event (~0.1 ms): a helper whose files changed (an upgrade, an edit in an
    editable install) says ``stale`` and exits, and the hook runs the new code.
    """
    root = Path(__file__).resolve().parent.parent
    out: list[tuple[str, int, int]] = []

    def walk(folder: str) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if entry.name == "__pycache__":
                continue
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path)
            elif entry.name.endswith((".py", ".toml")):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                out.append((entry.path, st.st_size, st.st_mtime_ns))

    walk(str(root))
    try:
        st = os.stat(sys.executable)
        out.append((sys.executable, st.st_size, st.st_mtime_ns))
    except OSError:
        pass
    return tuple(sorted(out))


class Server:
    def __init__(self, key: str, folder: Path, *, idle: float) -> None:
        self.key = key
        self.folder = folder
        self.endpoint_path = folder / f"{key}{SUFFIX}"
        self.idle = idle
        self.sock: socket.socket | None = None
        self.lock_fd = -1
        self.endpoint: Endpoint | None = None
        self.signature = code_signature()

    # --- life ------------------------------------------------------------------------------------

    def claim(self, wait: float = 2.0) -> bool:
        """Hold ``<key>.lock`` for life: one helper per key. A helper on its way out gets ``wait`` s."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = self.folder.stat()
        if st.st_uid != os.getuid():
            return False  # never speak through a folder someone else owns
        if st.st_mode & 0o077:
            os.chmod(self.folder, 0o700)
        fd = os.open(self.folder / f"{self.key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.lock_fd = fd
                return True
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.sock = sock
        self.endpoint = Endpoint(sock.getsockname()[1], secrets.token_hex(16), secrets.token_hex(16), os.getpid())
        tmp = self.folder / f".{self.key}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self.endpoint.line().encode("ascii"))
        finally:
            os.close(fd)
        os.replace(tmp, self.endpoint_path)  # whole or not at all, for a client reading it

    def still_ours(self) -> bool:
        return read_endpoint(self.endpoint_path) == self.endpoint

    def close(self) -> None:
        if self.endpoint is not None and self.still_ours():
            try:
                self.endpoint_path.unlink()
            except OSError:
                pass
        if self.sock is not None:
            self.sock.close()

    def run(self) -> None:
        """Keep :data:`_SPARES` children waiting in ``accept``; each serves one event and says so."""
        assert self.sock is not None
        self.sock.setblocking(False)  # several spares wait on it: the ones that lose the race go on
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        used_r, used_w = os.pipe()  # a spare writes its pid here when it took a connection
        hold_r, hold_w = os.pipe()  # closed by the parent when it exits: idle spares then go too
        spares: set[int] = set()
        last = checked = time.monotonic()
        try:
            while True:
                while len(spares) < _SPARES:
                    pid = self._fork_spare(used_w, hold_r, (used_r, hold_w))
                    if pid is None:
                        break
                    spares.add(pid)
                ready, _, _ = select.select([used_r], [], [], _REAP)
                now = time.monotonic()
                if ready:
                    for word in os.read(used_r, 4096).split():
                        if word == _TEAM_USED:
                            _warm(_WARM_TEAM)  # for the spares forked from now on
                        elif word.isdigit():
                            spares.discard(int(word))
                    last = now
                spares -= _reap()  # a spare that died without serving is replaced too
                if now - checked > _TICK:
                    checked = now
                    if now - last > self.idle or not self.still_ours():
                        return
        except _Stopping:
            return
        finally:
            os.close(hold_w)

    def _fork_spare(self, used_w: int, hold_r: int, parents: tuple[int, int]) -> int | None:
        try:
            pid = os.fork()
        except OSError:
            return None  # none waiting: clients get no greeting and run the hook themselves
        if pid:
            return pid
        code = 1
        try:
            for fd in (*parents, self.lock_fd):
                os.close(fd)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            conn = self._wait_for_client(hold_r)
            if conn is None:
                code = 0
            else:
                os.write(used_w, b"%d\n" % os.getpid())
                team = _WARM_TEAM[-1] in sys.modules
                code = self.serve_one(conn)
                if not team and _WARM_TEAM[-1] in sys.modules:
                    os.write(used_w, _TEAM_USED + b"\n")
                os.close(used_w)
        except BaseException:  # noqa: BLE001 (a child must never return into the parent's loop)
            pass
        finally:
            os._exit(code)

    def _wait_for_client(self, hold_r: int) -> socket.socket | None:
        """A spare: the next connection, or None once the parent is gone."""
        assert self.sock is not None
        while True:
            listening = self.sock.fileno()
            ready, _, _ = select.select([listening, hold_r], [], [])
            if listening in ready:
                try:
                    conn, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    continue  # another spare took it
                conn.setblocking(True)
                return conn
            return None  # the parent closed its end: it is stopping

    # --- one event (in the child) ------------------------------------------------------------

    def serve_one(self, conn: socket.socket) -> int:
        assert self.endpoint is not None
        conn.settimeout(_READ_TIMEOUT)
        conn.sendall(self.endpoint.server_token.encode("ascii") + b"\n")
        stale = code_signature() != self.signature  # while the client sends its request
        request = _read_request(conn)
        if request is None:
            return 1
        token, mode, cwd, env, payload = request
        if not hmac.compare_digest(token, self.endpoint.client_token.encode("ascii")):
            return 1
        if stale:  # the code on disk is not the code running here: the hook runs the new one
            conn.sendall(b"stale\n")
            os.kill(os.getppid(), signal.SIGTERM)
            return 0
        if mode == "background":
            conn.sendall(b"accepted\n")  # the client may go: the event is here, whole
            conn.close()
        _become(env)
        try:
            os.chdir(cwd)
        except OSError:
            pass
        from budget_state import hook

        if mode == "background":
            try:
                os.nice(10)  # nobody waits for it: Claude Code and the waited-for hooks come first
            except OSError:
                pass
            hook.main(["--background"], stdin=io.BytesIO(payload), stdout=io.StringIO(), env=os.environ)
        else:
            out = io.StringIO()
            hook.main([], stdin=io.BytesIO(payload), stdout=out, env=os.environ)
            conn.sendall(b"ok\n" + out.getvalue().encode("utf-8"))
            conn.close()
        _ledger.keep_parsed()  # for the next event, after the answer
        return 0


class _Stopping(Exception):
    """SIGTERM or SIGINT: leave the loop (raised from the handler, so a wait in select ends too)."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopping


def _reap() -> set[int]:
    """Collect the children that ended; their pids."""
    gone: set[int] = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return gone
        if pid == 0:
            return gone
        gone.add(pid)


def _become(env: dict[str, str]) -> None:
    """Take the event's environment (only what differs from the helper's: each change is a putenv)."""
    zone = os.environ.get("TZ")
    for name in [n for n in os.environ if n not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    if os.environ.get("TZ") != zone and hasattr(time, "tzset"):
        time.tzset()


def _read_request(conn: socket.socket) -> tuple[bytes, str, str, dict[str, str], bytes] | None:
    """``token NUL mode NUL cwd NUL (NAME=value NUL)* NUL payload NUL`` (see .client), or None."""
    buf = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
        if len(buf) > _MAX_REQUEST:
            return None
        fields = buf.split(b"\0")
        try:
            blank = fields.index(b"", 3)  # the empty entry that ends the environment
        except ValueError:
            continue
        if len(fields) > blank + 2:  # the payload, and the NUL after it
            break
    items = fields[3:blank]
    if len(items) == 1 and items[0].startswith(b"@"):  # the client's pid: its environment is in /proc
        try:
            with open(b"/proc/%s/environ" % items[0][1:].strip(), "rb") as f:
                items = f.read().split(b"\0")
        except OSError:
            return None
    env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(b"=")
        if sep and name:
            env[os.fsdecode(name)] = os.fsdecode(value)
    mode = fields[1].decode("ascii", "replace")
    return fields[0], mode, os.fsdecode(fields[2]), env, fields[blank + 1]


def serve(key: str) -> int:
    """Run the helper for ``key`` until it is idle, replaced, stale or told to stop."""
    env = dict(os.environ)
    folder = helper_dir(env)
    if folder is None or "/" in key or key.startswith(".") or not key:
        return 2
    try:
        idle = float(env.get(IDLE_ENV) or IDLE_SECONDS)
    except ValueError:
        idle = IDLE_SECONDS
    server = Server(key, folder, idle=idle)
    if not server.claim():
        return 0  # another helper has this key
    _warm()
    parsed = folder / "parsed"
    try:
        parsed.mkdir(mode=0o700, exist_ok=True)
        if parsed.stat().st_uid == os.getuid() and not parsed.stat().st_mode & 0o077:
            _ledger.PARSED = parsed  # only in a folder no one else can write to: pickle runs code
    except OSError:
        pass
    try:
        server.open()
        server.run()
    finally:
        server.close()
    return 0
