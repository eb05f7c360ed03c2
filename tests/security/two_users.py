"""Two local accounts, a victim and an attacker, for the attacks of docs/security.md (the fixture
``world`` is in this folder's conftest; the test modules import these by this module's own name).

The tests run the real hook lines (``/bin/sh -c <line>``, as Claude Code runs them) as an
unprivileged victim uid, while an unprivileged attacker uid plants files, binds ports and listens.
Both are bare numeric uids switched to with ``setpriv`` (no ``/etc/passwd`` entry is made, nothing
on the machine changes but a temporary folder). That needs root: elsewhere the tests that need two
users skip, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kit

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(Path(sys.executable))  # the test venv's interpreter: it has claude-budget (editable)
SETPRIV = shutil.which("setpriv")


def _free_uid(start: int) -> int:
    import pwd

    uid = start
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


@dataclass
class User:
    """An unprivileged account: a uid (its own gid) and a home only it can enter."""

    name: str
    uid: int
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, argv: list[str]) -> list[str]:
        assert SETPRIV is not None
        return [SETPRIV, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--", *argv]

    def run(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self.argv(argv), input=stdin, capture_output=True, cwd=cwd, env={**self.env, **(env or {})}, timeout=timeout
        )

    def spawn(self, argv: list[str], *, cwd: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(argv), cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def processes(self) -> list[int]:
        """Every live process of this uid (zombies included: they are processes someone left)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        found.append(int(entry))
                except OSError:
                    pass
        return found

    def settle(self, seconds: float = 20) -> list[int]:
        """Wait (bounded) for this user's background hooks to finish; what is still running."""
        deadline = time.monotonic() + seconds
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def own(self, *paths: Path) -> None:
        """Hand files made by the test (as root) to this user, folders and all."""
        for path in paths:
            for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
                os.lchown(p, self.uid, self.uid)

    def kill_all(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def listening_sockets(uid: int) -> list[str]:
    """``address:port`` of every TCP socket in LISTEN state that ``uid`` owns (IPv4 and IPv6)."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[7]) == uid:
                out.append(cols[1])
    return out


@dataclass
class World:
    base: Path
    victim: User
    attacker: User

    def project(self, name: str = "proj", *, config: str = "", budget: int = 100) -> Path:
        """A victim's project: one command with a token budget, and (optionally) a budget.toml."""
        root = self.victim.home / name
        (root / ".claude" / "commands").mkdir(parents=True)
        (root / ".claude" / "commands" / "review-pr.md").write_text(f"---\ntokenBudget: {budget}\n---\nReview it.\n")
        if config:
            (root / ".claude" / "budget.toml").write_text(config)
        self.victim.own(root)
        return root


_SESSION = "sess-sec"


def _transcript(home: Path) -> Path:
    return home / ".claude" / "projects" / "p" / f"{_SESSION}.jsonl"


def payload(project: Path, home: Path, event: str, **fields: Any) -> bytes:
    """The victim's event, as Claude Code sends it."""
    return json.dumps(kit.payload(event, session=_SESSION, transcript=_transcript(home), cwd=project, **fields)).encode()


def spend(user: User, prompt_id: str, tokens: int, n: int) -> None:
    """One API response (request ``n``) of ``tokens`` input tokens in the victim's transcript, as
    Claude Code writes it."""
    kit.append_lines(_transcript(user.home), kit.user_record(prompt_id, "x"), kit.response_record({"input": tokens}, n=n))
    user.own(user.home / ".claude")


def _traversable(path: Path) -> list[tuple[Path, int]]:
    """Let other uids reach ``path`` (o+x on each ancestor that lacks it); what was changed, to undo."""
    changed = []
    for folder in [path, *path.parents]:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if not mode & stat.S_IXOTH:
            os.chmod(folder, mode | stat.S_IXOTH)
            changed.append((folder, mode))
    return changed
