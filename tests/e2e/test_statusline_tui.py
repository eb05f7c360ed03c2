"""The status line in Claude Code's TUI, and ``claude-budget watch`` in a terminal — both through tmux.

``install --statusline`` makes claude-budget the project's ``statusLine``; the real CLI (both pins)
runs it with its JSON on stdin after each response and on the ``refreshInterval`` timer, and
shows what it prints under the prompt box. ``watch`` needs no Claude Code: it runs in a tmux pane
of its own while another process records usage through the public API.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import clean_env, pane_idle, tmux_bin

import budget_state
from budget_state.budgets._units import humanize

HOURLY = 60_000  # the overall budget's rolling-hour token limit


def expected_line(status: dict[str, Any]) -> tuple[str, str]:
    """What the line must say for /review-pr and the overall budget, from ``status --json``."""
    cmd, overall = status["commands"]["/review-pr"], status["overall"]
    fill = min(10, cmd["used"] * 10 // cmd["limit"])
    bar = f"/review-pr [{'#' * fill}{'-' * (10 - fill)}] {cmd['used'] * 100 // cmd['limit']}% "
    bar += f"{humanize(cmd['used'])}/{humanize(cmd['limit'])}"
    # All of this test's usage is less than an hour old: the rolling hour holds the overall total.
    return bar, f"tightest: overall tokens/1h {overall['used'] * 100 // HOURLY}%"


def test_the_status_line_shows_the_session_command_in_the_tui(project, fake_api, interactive, claude):
    p = project()
    proc = p.budget_cli("install", "--statusline", str(p.root))
    assert proc.returncode == 0 and "set statusLine" in proc.stdout, proc.stdout + proc.stderr
    p.write_config(f'[window.hour]\nspan = "1h"\ntokens = {HOURLY}\n')
    p.write_command("review-pr", "Review PR $ARGUMENTS. SCRIPT: bash, text", token_budget=500_000)
    tui = interactive(p)
    start = "overall tokens/1h [----------] 0% 0/60K"
    tui.wait(lambda pane: start in tui.screen(), "the status line before any prompt")

    tui.submit("/review-pr 1")
    tui.wait(lambda pane: fake_api.requests == 2 and "● Step 2: text." in pane and pane_idle(pane), "the turn")

    def shows(line: tuple[str, str]) -> bool:
        screen = tui.screen()
        return any(line[0] in row and line[1] in row for row in screen.splitlines())

    # The hooks count the last response a moment after the TUI shows it (Stop, then the transcript).
    spent = sum(fake_api.totals().values())
    deadline = time.monotonic() + 10
    while (status := p.status())["commands"]["/review-pr"]["used"] != spent and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status["commands"]["/review-pr"]["used"] == spent, status
    line = expected_line(status)
    tui.wait(lambda _: shows(line), f"the status line {line} under the prompt", timeout=15)

    # Spending elsewhere (an orchestrator's own count) shows without a new response: on the timer.
    env = {"HOME": str(p.home)}
    budget_state.record_usage({"input": 100_000}, command="/review-pr", project=p.root, env=env)
    budget_state.record_usage({"input": 20_000}, project=p.root, env=env)
    line = expected_line(p.status())
    tui.wait(lambda _: shows(line), f"the refreshed status line {line}", timeout=15)
    assert fake_api.requests == 2, tui.describe()
    assert tui.exit() == "status 0", tui.describe()


# --- watch -----------------------------------------------------------------------------------


class Pane:
    """One command in a detached tmux server of its own; killed by close()."""

    def __init__(self, tmp: Path, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.tmux = tmux_bin()
        self.socket = f"claude-budget-watch-{os.getpid()}-{secrets.token_hex(4)}"
        self.status = tmp / "exit-status"
        conf = tmp / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\n", encoding="utf-8")
        self.conf = conf
        # The trap keeps the shell alive through Ctrl-C (a handler, not an ignore: the child still gets it).
        script = f"trap : INT; {shlex.join(argv)}; echo $? > {shlex.quote(str(self.status))}"
        env_argv = ["env", "-i", *(f"{k}={v}" for k, v in env.items())]
        self._tmux(
            "new-session", "-d", "-s", "w", "-x", "100", "-y", "30", "-c", str(cwd), *env_argv, "sh", "-c", script
        )

    def _tmux(self, *args: str) -> str:
        env = {k: v for k, v in clean_env({}).items() if not k.startswith("TMUX")}
        proc = subprocess.run(
            [self.tmux, "-u", "-L", self.socket, "-f", str(self.conf), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=15,
        )
        return proc.stdout

    def screen(self, *, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "w")

    def wait(self, done: Any, what: str, timeout: float = 15) -> float:
        started = time.monotonic()
        while not done(self.screen()):
            if time.monotonic() - started > timeout:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n--- pane ---\n{self.screen()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "w", *keys)

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.mark.parametrize("no_color", [False, True], ids=["color", "NO_COLOR"])
def test_watch_redraws_in_place_within_5_s_and_ctrl_c_exits_0(tmp_path: Path, no_color: bool) -> None:
    root = tmp_path / "proj"
    (root / ".claude").mkdir(parents=True)
    (root / ".claude" / "budget.toml").write_text('[commands."/review-pr"]\ntokens = "100k"\n')
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color"}
    if no_color:
        env["NO_COLOR"] = "1"
    pane = Pane(tmp_path, [sys.executable, "-m", "budget_state", "watch"], env, root)
    try:
        pane.wait(lambda s: "0/100K" in s and "Ctrl-C to stop" in s, "the first status")

        # Another process records usage through the public API, as an orchestrator would.
        code = (
            "import budget_state; "
            f"budget_state.record_usage({{'input': 42_000}}, command='/review-pr', project={str(root)!r})"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
        took = pane.wait(lambda s: "42K/100K" in s, "the redraw after the usage landed", timeout=10)
        assert took < 5, took
        screen = pane.screen()
        assert screen.count("Token budgets") == 1 and "0/100K" not in screen, screen  # in place, not appended
        colored = pane.screen(escapes=True)
        assert ("\x1b[32m" in colored or "\x1b[38;5;2m" in colored) is not no_color, json.dumps(colored[:2000])

        pane.keys("C-c")
        pane.wait(lambda s: pane.status.exists() and pane.status.read_text().strip() != "", "watch to exit")
        assert pane.status.read_text().strip() == "0"
        assert "Traceback" not in pane.screen() and "KeyboardInterrupt" not in pane.screen()
    finally:
        pane.close()
