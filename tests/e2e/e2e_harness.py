"""The machinery of the end-to-end tests: a project, its isolated HOME, ``claude -p``, the numbers.

Kept out of ``conftest.py`` so test modules can import the helpers (``from e2e_harness import
add, total``) without depending on which ``conftest`` module pytest loaded last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from fakeapi import FakeAPI  # noqa: E402 (needs the sys.path entry above)

CLAUDE_BIN_ENV = "CLAUDE_BUDGET_CLAUDE_BIN"
INSTALL_HINT = f"cd {REPO} && npm ci   # installs the pinned @anthropic-ai/claude-code into node_modules/"
RUN_TIMEOUT = 120.0
TOOLS = "Bash Task Agent"
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
    from budget_state._units import humanize  # the product's own short form, as /budget prints it

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

    def describe(self) -> str:
        return f"claude -p {self.prompt!r} -> rc {self.returncode}\nresult: {json.dumps(self.result, indent=1)}\nstderr: {self.stderr}"


@dataclass
class Project:
    """A temporary project with claude-budget installed, its own HOME, and the fake API."""

    root: Path
    home: Path
    api: FakeAPI
    claude: Path

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
                "ANTHROPIC_API_KEY": "sk-ant-e2e-fake",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                **(extra_env or {}),
            }
        )

    def run_claude(self, prompt: str, *, extra_env: Mapping[str, str] | None = None, output: str = "json") -> Run:
        """Run ``claude -p prompt`` headless in the project and return its parsed result."""
        argv = [str(self.claude), "-p", prompt, "--output-format", output, "--allowedTools", TOOLS]
        if output == "stream-json":
            argv.append("--verbose")
        before = self.api.requests
        started = time.monotonic()
        # A new session, so a timeout can kill the CLI together with the hooks it started.
        proc = subprocess.Popen(
            argv,
            cwd=self.root,
            env=self.env(extra_env),
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
