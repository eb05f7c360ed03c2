"""The machinery of the end-to-end tests: a project, its isolated HOME, ``claude -p``, the numbers.

Kept out of ``conftest.py`` so test modules can import the helpers (``from e2e_harness import
add, total``) without depending on which ``conftest`` module pytest loaded last.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from budget_state.ledger._state import LedgerState

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from fakeapi import FakeAPI  # noqa: E402 (needs the sys.path entry above)

CLAUDE_BIN_ENV = "CLAUDE_BUDGET_CLAUDE_BIN"
CLAUDE_VERSIONS_ENV = "CLAUDE_BUDGET_CLAUDE_VERSIONS"  # e.g. "2.1.332": run the e2e tests on these pins only
INSTALL_HINT = f"cd {REPO} && npm ci   # installs the pinned @anthropic-ai/claude-code releases into node_modules/"
_ALIAS = "claude-code-"  # package.json pins each release as "claude-code-X.Y.Z": "npm:@anthropic-ai/claude-code@X.Y.Z"


# What changed between the pinned releases, as checked on them (tests branch on these, not on guesses):
MODS = (2, 1, 286)  # Claude Code loads claude-budget's mod: /budget is its display-only command
BACKGROUND_SUBAGENTS = (2, 1, 198)  # a subagent runs in the background; a follow-up turn reports it
COST_STATE = (2, 1, 332)  # the transcript ends with Claude Code's own totals; modelUsage of a
#                           resumed or forked session is cumulative over the whole session


def version_tuple(text: str, /) -> tuple[int, ...]:
    """``"2.1.332 (Claude Code)"`` or ``"2.1.332"`` -> ``(2, 1, 332)``."""
    return tuple(int(part) for part in text.split()[0].split("."))


def pinned_versions() -> list[str]:
    """The Claude Code releases package.json pins, oldest first."""
    deps = json.loads((REPO / "package.json").read_text(encoding="utf-8"))["devDependencies"]
    versions = [name[len(_ALIAS) :] for name in deps if name.startswith(_ALIAS)]
    return sorted(versions, key=version_tuple)


def pinned_path(version: str, /) -> Path:
    return REPO / "node_modules" / f"{_ALIAS}{version}" / "bin" / "claude.exe"


@dataclass(frozen=True)
class ClaudeCLI:
    """One Claude Code CLI binary and its version."""

    path: Path
    version: tuple[int, ...]

    def at_least(self, *version: int) -> bool:
        return self.version >= version

    @property
    def name(self) -> str:
        return ".".join(map(str, self.version))


RUN_TIMEOUT = 120.0
TOOLS = "Bash Task Agent"
API_KEY = "sk-ant-e2e-fake"  # any string: the fake API does not check it
OAUTH_TOKEN = "sk-ant-oat-e2e-fake"  # a "subscription" login, as far as Claude Code can tell offline
# Inherited variables that would change what the CLI or the hook does: a Claude Code session the
# tests run inside (CLAUDECODE, CLAUDE_PROJECT_DIR, CLAUDE_CODE_*), real API credentials, the
# budget settings of whoever runs the tests, and XDG dirs that would escape the temporary HOME.
_SCRUB_PREFIXES = ("CLAUDE", "ANTHROPIC", "XDG_")
TOKEN_KEYS = ("input", "output", "cache_creation", "cache_read")
_MODEL_USAGE_KEYS = {
    "input": "inputTokens",
    "output": "outputTokens",
    "cache_creation": "cacheCreationInputTokens",
    "cache_read": "cacheReadInputTokens",
}


# --- numbers -------------------------------------------------------------------------------------


def model_usage(result: Mapping[str, Any], /) -> dict[str, int]:
    """The ``modelUsage`` of a ``claude -p`` result, summed over models, in the ledger's four keys."""
    out = dict.fromkeys(TOKEN_KEYS, 0)
    for per_model in (result.get("modelUsage") or {}).values():
        for key, field_ in _MODEL_USAGE_KEYS.items():
            out[key] += int(per_model.get(field_, 0))
    return out


def add(*usages: Mapping[str, int]) -> dict[str, int]:
    """Key-wise sum of token dicts."""
    return {k: sum(u[k] for u in usages) for k in TOKEN_KEYS}


def total(usage: Mapping[str, int], /) -> int:
    """Tokens as the product counts them: input + output + cache creation + cache read."""
    return sum(usage[k] for k in TOKEN_KEYS)


def number_in(text: str, n: int, /) -> bool:
    """Whether ``n`` is written in ``text``: plain, with thousands separators, or short (``12.3K``)."""
    from budget_state.budgets._units import humanize  # the product's own short form, as /budget prints it

    return any(form in text for form in (str(n), f"{n:,}", f"{n:_}", humanize(n)))


# --- the CLI ---------------------------------------------------------------------------------------


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the scrubbed variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env.update(extra)
    return env


@dataclass
class Run:
    """One finished ``claude -p``."""

    prompt: str
    result: dict[str, Any]
    stderr: str
    returncode: int
    seconds: float
    requests: int  # Messages requests the fake API got while it ran (meaningless for parallel runs)
    events: list[dict[str, Any]] = field(default_factory=list)  # stream-json lines, if asked for

    @property
    def text(self) -> str:
        return str(self.result.get("result", ""))

    @property
    def usage(self) -> dict[str, int]:
        return model_usage(self.result)

    @property
    def blocked(self) -> bool:
        return self.text.startswith("UserPromptSubmit operation blocked by hook:")

    @property
    def by_mod(self) -> bool:
        """Answered by claude-budget's mod (2.1.286+): display only, no turn, no "blocked" frame;
        ``-p`` prefixes the plugin's name (``claude-budget`` or, installed, ``claude-budget-mod``)."""
        return (
            not self.blocked
            and self.result.get("num_turns") == 0
            and re.match(r"claude-budget[\w+-]*: ", self.text) is not None
        )

    def describe(self) -> str:
        return f"claude -p {self.prompt!r} -> rc {self.returncode}\nresult: {json.dumps(self.result, indent=1)}\nstderr: {self.stderr}"


@dataclass
class Project:
    """A temporary project with claude-budget installed, its own HOME, and the fake API."""

    root: Path
    home: Path
    api: FakeAPI
    cli: ClaudeCLI

    @property
    def claude(self) -> Path:
        return self.cli.path

    @property
    def ledger(self) -> Path:
        return self.root / ".claude" / "budget-ledger.toml"

    @property
    def config(self) -> Path:
        return self.root / ".claude" / "budget.toml"

    def write_command(
        self, name: str, body: str, *, token_budget: int | None = None, description: str | None = None
    ) -> Path:
        """Write ``.claude/commands/<name>.md`` (``name`` may be ``ns/name`` or start with ``/``)."""
        front = [f"description: {description or 'e2e test command ' + name}"]
        if token_budget is not None:
            front.append(f"tokenBudget: {token_budget}")
        path = self.root / ".claude" / "commands" / f"{name.lstrip('/')}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\n" + "\n".join(front) + "\n---\n" + body.rstrip("\n") + "\n", encoding="utf-8")
        return path

    def write_config(self, text: str) -> Path:
        """Replace ``.claude/budget.toml`` (the commented one ``install`` wrote) with ``text``."""
        self.config.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return self.config

    def env(self, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
        return clean_env(
            {
                "HOME": str(self.home),
                "ANTHROPIC_BASE_URL": self.api.url,
                "ANTHROPIC_API_KEY": API_KEY,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                **(extra_env or {}),
            }
        )

    def run_claude(
        self,
        prompt: str,
        *,
        extra_env: Mapping[str, str] | None = None,
        output: str = "json",
        args: Sequence[str] = (),
        login: str = "api-key",
    ) -> Run:
        """Run ``claude -p prompt [args]`` headless in the project and return its parsed result.

        ``login="subscription"``: ``CLAUDE_CODE_OAUTH_TOKEN`` instead of the API key (the fake API's
        rate-limit headers then reach Claude Code's plan windows)."""
        argv = [str(self.claude), "-p", prompt, "--output-format", output, "--allowedTools", TOOLS, *args]
        if output == "stream-json":
            argv.append("--verbose")
        before = self.api.requests
        started = time.monotonic()
        # A new session, so a timeout can kill the CLI together with the hooks it started.
        proc = subprocess.Popen(
            argv,
            cwd=self.root,
            env=self._login(self.env(extra_env), login),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(
                f"claude -p {prompt!r} did not finish in {RUN_TIMEOUT:.0f} s\nstdout: {stdout[-4000:]}\nstderr: {stderr[-4000:]}"
            )
        seconds = time.monotonic() - started
        events: list[dict[str, Any]] = []
        try:
            if output == "json":
                result = json.loads(stdout)
            else:
                events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
                result = next(e for e in reversed(events) if e.get("type") == "result")
        except (ValueError, StopIteration):
            pytest.fail(
                f"claude -p {prompt!r} printed no {output} result (rc {proc.returncode})\nstdout: {stdout[-4000:]}\nstderr: {stderr[-4000:]}"
            )
        return Run(prompt, result, stderr, proc.returncode, seconds, self.api.requests - before, events)

    @staticmethod
    def _login(env: dict[str, str], login: str) -> dict[str, str]:
        if login == "subscription":
            env.pop("ANTHROPIC_API_KEY", None)
            env["CLAUDE_CODE_OAUTH_TOKEN"] = OAUTH_TOKEN
        return env

    def budget_cli(self, *args: str, extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``python -m budget_state ARGS`` as a user would run it in the project (not from a hook)."""
        env = self.env(extra_env)
        env.pop("ANTHROPIC_BASE_URL")
        env.pop("ANTHROPIC_API_KEY")
        return subprocess.run(
            [sys.executable, "-m", "budget_state", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def status(self, *, extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``python -m budget_state status --json``, parsed."""
        proc = self.budget_cli("status", "--json", extra_env=extra_env)
        assert proc.returncode == 0, f"status --json failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def ledger_bytes(self) -> bytes:
        return self.ledger.read_bytes() if self.ledger.exists() else b""

    def state(self) -> LedgerState:
        """The ledger's state as the product reads it (the ledger file and its parts beside it)."""
        from budget_state.ledger._ledger import Ledger

        return Ledger(self.ledger).read()


# --- interactive sessions (tmux) -------------------------------------------------------------------

TMUX_BIN_ENV = "CLAUDE_BUDGET_TMUX_BIN"
TMUX_HINT = "apt-get install tmux   # the interactive tests drive Claude Code's TUI through tmux"
INTERACTIVE_TIMEOUT = 30.0  # seconds: a bound on any single wait; only reached when something is wrong
TITLE_MARKER = "Generate a concise, sentence-case title"  # the system prompt of the CLI's session-title request
# What the TUI shows in its footer when the prompt is idle, and what it shows while a turn runs.
# (2.1.197: "? for shortcuts"; 2.1.332: the permission mode's line, "… (shift+tab to cycle)".)
IDLE_FOOTERS = ("? for shortcuts", "shift+tab to cycle")
BUSY_FOOTER = "esc to interrupt"


class _BodyRecorder:
    """Handler mixin: remember each answered request's system prompt (by request id)."""

    server_api: RecordingFakeAPI

    def _stream(self, body: dict[str, Any], msg_id: str, req_id: str, *rest: Any) -> None:
        self.server_api.note(req_id, body)
        super()._stream(body, msg_id, req_id, *rest)  # type: ignore[misc]


@dataclass
class RecordingFakeAPI(FakeAPI):
    """:class:`FakeAPI` that also keeps what each answered request was for.

    Interactive Claude Code makes requests of its own (a session title for a typed prompt) that
    never reach the transcript; the system prompt tells them apart from a turn's requests.
    """

    systems: dict[str, str] = field(default_factory=dict)  # request id -> system prompt text

    def start(self) -> RecordingFakeAPI:
        super().start()
        base = self._httpd.RequestHandlerClass  # no request can have arrived yet: nothing knows the port
        self._httpd.RequestHandlerClass = type("RecordingHandler", (_BodyRecorder, base), {})
        return self

    def note(self, request_id: str, body: dict[str, Any]) -> None:
        system = body.get("system")
        if isinstance(system, list):
            system = "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
        with self._lock:
            self.systems[request_id] = str(system or "")

    def is_title(self, sent: Any) -> bool:
        """Whether a :class:`fakeapi.Sent` answered the CLI's session-title request."""
        with self._lock:
            return TITLE_MARKER in self.systems.get(sent.request_id, "")


def usage_of(sent: Any, /) -> dict[str, int]:
    """The four token counts of some :class:`fakeapi.Sent` responses, summed."""
    out = dict.fromkeys(TOKEN_KEYS, 0)
    for s in sent:
        out["input"] += s.usage["input_tokens"]
        out["output"] += s.usage["output_tokens"]
        out["cache_creation"] += s.usage["cache_creation_input_tokens"]
        out["cache_read"] += s.usage["cache_read_input_tokens"]
    return out


def flat(text: str, /) -> str:
    """``text`` with every run of whitespace made one space (the TUI wraps long lines itself)."""
    return " ".join(text.split())


def after(text: str, marker: str, /) -> str:
    """What follows the last ``marker`` in ``text`` ("" when it is not there)."""
    i = text.rfind(marker)
    return "" if i < 0 else text[i + len(marker) :]


def pane_idle(pane: str, /) -> bool:
    """Whether the captured screen ends with the idle prompt's footer (no turn running, no menu open)."""
    tail = [line for line in pane.splitlines() if line.strip()][-3:]
    idle = any(footer in line for line in tail for footer in IDLE_FOOTERS)
    return idle and not any(BUSY_FOOTER in line for line in tail)


def read_toml(path: Path, /) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    with path.open("rb") as f:
        return tomllib.load(f)


def transcript_request_ids(home: Path, session_id: str, /) -> set[str]:
    """The ``requestId`` of every assistant record of a session: its transcript and its subagents'."""
    ids: set[str] = set()
    for base in (home / ".claude" / "projects").glob("*"):
        files = [base / f"{session_id}.jsonl", *sorted((base / session_id / "subagents").glob("*.jsonl"))]
        for path in files:
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("type") == "assistant" and record.get("requestId"):
                    ids.add(str(record["requestId"]))
    return ids


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name ([0] state, [1] ppid, [19] start time)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if _stat(int(p.name))[1:2] == [str(pid)]]


@dataclass(frozen=True)
class _Process:
    """A process we started, known by pid and start time (so a reused pid is never mistaken for it)."""

    pid: int
    started: str

    @classmethod
    def of(cls, pid: int) -> _Process:
        fields = _stat(pid)
        return cls(pid, fields[19] if len(fields) > 19 else "")

    def running(self) -> bool:
        fields = _stat(self.pid)
        return len(fields) > 19 and fields[19] == self.started and fields[0] != "Z"


def tmux_bin() -> str:
    """The tmux to drive the TUI with; a missing one fails (never skips), like a missing CLI."""
    import shutil

    configured = os.environ.get(TMUX_BIN_ENV)
    path = configured or shutil.which("tmux") or "/usr/bin/tmux"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"tmux not found at {path}; install it with:\n    {TMUX_HINT}", pytrace=False)
    return path


@dataclass
class Interactive:
    """Claude Code's interactive TUI for a :class:`Project`, in a detached tmux server of its own.

    The CLI gets an explicit environment (nothing inherited but ``PATH``), a ``HOME`` pre-seeded so
    that no onboarding, trust or "use this API key?" dialog shows, and a fixed terminal size. Every
    wait polls the pane (and whatever else the caller asks) against a deadline; a timeout fails
    with the last capture of the pane.
    """

    project: Project
    socket: str  # tmux -L name: a server of its own, killed by close()
    tmux: str
    width: int = 160
    height: int = 50
    timeout: float = INTERACTIVE_TIMEOUT
    last: str = ""  # the last capture of the pane (whole history)
    processes: list[_Process] = field(default_factory=list)  # the pane's shell, then the CLI
    socket_path: str | None = None
    #: "api-key" (ANTHROPIC_API_KEY) or "subscription": CLAUDE_CODE_OAUTH_TOKEN instead, which makes
    #: Claude Code read the fake API's rate-limit headers and pass the statusLine ``rate_limits``
    login: str = "api-key"

    @property
    def env(self) -> dict[str, str]:
        key = ("CLAUDE_CODE_OAUTH_TOKEN", OAUTH_TOKEN) if self.login == "subscription" else ("ANTHROPIC_API_KEY", API_KEY)
        return {
            "HOME": str(self.project.home),
            "ANTHROPIC_BASE_URL": self.project.api.url,
            key[0]: key[1],
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "TERM": "xterm-256color",
        }

    def _file(self, suffix: str) -> Path:
        return self.project.root.parent / f"{self.project.root.name}-{suffix}"

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # The tmux client and server get a scrubbed environment too (and no TMUX: not nested).
        env = {k: v for k, v in clean_env({}).items() if not k.startswith("TMUX")}
        proc = subprocess.run(
            [self.tmux, "-u", "-L", self.socket, "-f", str(self._file("tmux.conf")), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=15,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"tmux {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}\n{self.describe()}")
        return proc

    def seed_home(self) -> None:
        """``~/.claude.json``: onboarding done, the project trusted, the API key approved (last 20 chars)."""
        path = self.project.home / ".claude.json"
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data["hasCompletedOnboarding"] = True
        data["customApiKeyResponses"] = {"approved": [API_KEY[-20:]], "rejected": []}
        projects = data.setdefault("projects", {})
        for root in {str(self.project.root), str(self.project.root.resolve())}:
            projects.setdefault(root, {})["hasTrustDialogAccepted"] = True
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    def start(self) -> Interactive:
        import shlex

        self.seed_home()
        # remain-on-exit: the pane (and its last screen) outlives the CLI, so its end can be observed.
        self._file("tmux.conf").write_text("set -g remain-on-exit on\nset -g history-limit 20000\n", encoding="utf-8")
        # A shell between tmux and the CLI keeps the CLI's exit status: tmux 3.3 sometimes marks the
        # pane dead (pty closed) without ever reaping the process, so it cannot tell the status.
        status = self._file("exit-status")
        # acceptEdits, on both pins: 2.1.332 starts in "auto" mode, whose server-side check of each
        # tool call cannot reach a local API and stops the turn with a dialog.
        claude = (
            f"{shlex.quote(str(self.project.claude))} --allowedTools {shlex.quote(TOOLS)} --permission-mode acceptEdits"
        )
        script = f"{claude}; echo $? > {shlex.quote(str(status))}"
        env_argv = ["env", "-i", *(f"{k}={v}" for k, v in self.env.items())]
        self._tmux(
            "new-session", "-d", "-s", "main", "-x", str(self.width), "-y", str(self.height),
            "-c", str(self.project.root), *env_argv, "/bin/sh", "-c", script,
        )  # fmt: skip
        info = self._tmux("display-message", "-p", "-t", "main", "#{pane_pid} #{socket_path}").stdout.split(maxsplit=1)
        self.processes, self.socket_path = [_Process.of(int(info[0]))], info[1].strip()
        self.wait(pane_idle, "the idle prompt after start-up (no onboarding, trust or API-key dialog)")
        self.processes += [_Process.of(pid) for pid in _children(self.processes[0].pid)]
        for unwanted in ("Not logged in", "Detected a custom API key", "trust"):
            assert unwanted not in self.last, f"start-up shows {unwanted!r}\n{self.describe()}"
        return self

    def capture(self) -> str:
        """The pane's whole history and screen, wrapped lines joined."""
        proc = self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "main", check=False)
        if proc.returncode == 0:
            self.last = proc.stdout
        return self.last

    def screen(self) -> str:
        proc = self._tmux("capture-pane", "-p", "-J", "-t", "main", check=False)
        return proc.stdout if proc.returncode == 0 else ""

    def input_line(self) -> str | None:
        """The text in the prompt box (the last ``❯`` line on screen), or None if there is none."""
        lines = [line for line in self.screen().splitlines() if line.startswith("❯")]
        return lines[-1][1:].strip() if lines else None

    def describe(self) -> str:
        fmt = "dead=#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal}"
        pane = self._tmux("list-panes", "-t", "main", "-F", fmt, check=False)
        procs = ", ".join(f"{p.pid} {'running' if p.running() else 'ended'}" for p in self.processes)
        return (
            f"fake API: {self.project.api.requests} requests; pane: {pane.stdout.strip() or pane.stderr.strip()}; "
            f"processes (shell, CLI): {procs}\n"
            f"--- last capture of the pane (tmux -L {self.socket}) ---\n{self.last.rstrip()}\n--- end of pane ---"
        )

    def wait(self, done: Any, what: str, *, timeout: float | None = None) -> str:
        """Poll until ``done(pane_text)`` is true; return that capture, or fail with it after the deadline."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            pane = self.capture()
            if done(pane):
                return pane
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {limit:.0f} s waiting for {what}\n{self.describe()}")
            time.sleep(0.1)

    def type(self, text: str) -> None:
        """Type ``text`` into the empty prompt box (not submitted)."""
        self.wait(lambda _: self.input_line() == "", "an empty prompt box")
        self._tmux("send-keys", "-t", "main", "-l", text)
        self.wait(lambda _: self.input_line() == text, f"{text!r} in the prompt box")

    def submit(self, text: str) -> None:
        """Type ``text`` and press Enter; return once the prompt box is empty again (it was taken)."""
        self.type(text)
        self._tmux("send-keys", "-t", "main", "Enter")
        self.wait(lambda _: self.input_line() == "", f"{text!r} to be submitted")

    def ended(self) -> str:
        """How the CLI ended: ``"status 0"``, ``"signal 1"``; "" while it runs."""
        status = self._file("exit-status")
        if status.exists() and status.read_text(encoding="utf-8").strip():
            return f"status {status.read_text(encoding='utf-8').strip()}"
        pane = self._tmux("list-panes", "-t", "main", "-F", "#{pane_dead}|#{pane_dead_signal}", check=False)
        dead, _, sig = pane.stdout.strip().partition("|")
        return f"signal {sig}" if dead == "1" and sig else ""

    def clear_input(self) -> None:
        """Empty the prompt box (2.1.332 with a mod loaded puts a prompt a hook refused back into it)."""
        for _ in range(3):
            if self.input_line() in ("", None):
                return
            self._tmux("send-keys", "-t", "main", "C-u")
            time.sleep(0.2)

    def exit(self) -> str:
        """``/exit``: the CLI ends the session (SessionEnd hooks included); returns how it ended."""
        self.type("/exit")
        self._tmux("send-keys", "-t", "main", "Enter")
        self.wait(lambda _: self.ended() != "", "the CLI to exit after /exit")
        return self.ended()

    def cli_record(self) -> dict[str, Any]:
        """What the CLI wrote about its last session of this project into ``~/.claude.json`` at exit."""
        data = json.loads((self.project.home / ".claude.json").read_text(encoding="utf-8"))
        projects = data.get("projects") or {}
        return dict(projects.get(str(self.project.root)) or projects.get(str(self.project.root.resolve())) or {})

    def close(self) -> None:
        """Kill the tmux server (SIGHUP to the CLI), then make sure our processes are gone, by pid."""
        self._tmux("kill-server", check=False)
        deadline = time.monotonic() + 5
        while any(p.running() for p in self.processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in reversed(self.processes):
            if p.running():
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.socket_path:
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
