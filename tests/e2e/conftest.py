"""End-to-end tests: the real Claude Code CLI, the local fake Messages API, an installed project.

Every test here runs ``claude -p`` (the version pinned in ``package.json``; ``npm ci`` installs
it) — or its interactive TUI, driven through tmux (``test_interactive.py``) — in a throw-away
project wired with ``python -m budget_state install``, against ``tests/fakeapi.py``, with its own
``HOME``. Nothing touches the real ``~/.claude`` or the network. The numbers the tests compare
come from three independent places: what the fake API sent (``FakeAPI.totals()``), what the CLI
reports (``modelUsage`` of the ``-p`` JSON, ``lastModelUsage`` in ``~/.claude.json`` after an
interactive session) and what the ledger holds (``python -m budget_state status --json``). The
machinery is in ``e2e_harness.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

if str(Path(__file__).parent) not in sys.path:  # the harness module lives next to this file
    sys.path.insert(0, str(Path(__file__).parent))

from e2e_harness import (
    CLAUDE_BIN_ENV,
    CLAUDE_VERSIONS_ENV,
    INSTALL_HINT,
    ClaudeCLI,
    FakeAPI,
    Interactive,
    Project,
    clean_env,
    pinned_path,
    pinned_versions,
    tmux_bin,
    version_tuple,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


def _versions() -> list[str]:
    if os.environ.get(CLAUDE_BIN_ENV):
        return ["custom"]
    pinned = pinned_versions()
    wanted = [v.strip() for v in os.environ.get(CLAUDE_VERSIONS_ENV, "").split(",") if v.strip()]
    unknown = [v for v in wanted if v not in pinned]
    if unknown:
        raise pytest.UsageError(f"{CLAUDE_VERSIONS_ENV}={','.join(wanted)}: package.json pins {', '.join(pinned)}")
    return wanted or pinned


@pytest.fixture(scope="session", params=_versions(), ids=lambda v: f"cc{v}")
def claude(request: pytest.FixtureRequest) -> ClaudeCLI:
    """Each pinned Claude Code CLI in turn (the oldest supported and the current release).

    A missing one fails (never skips) so CI cannot pass silently. ``CLAUDE_BUDGET_CLAUDE_BIN``
    runs the suite on one other binary instead; ``CLAUDE_BUDGET_CLAUDE_VERSIONS`` on some pins only.
    """
    configured = os.environ.get(CLAUDE_BIN_ENV)
    path = Path(configured) if configured else pinned_path(request.param)
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"{CLAUDE_BIN_ENV}={configured}" if configured else str(path)
        pytest.fail(f"Claude Code CLI not found at {where}; install it with:\n    {INSTALL_HINT}", pytrace=False)
    proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, env=clean_env({}))
    if proc.returncode != 0:
        pytest.fail(
            f"{path} --version failed ({proc.returncode}): {proc.stderr.strip()}\n    {INSTALL_HINT}", pytrace=False
        )
    if not configured and not proc.stdout.startswith(request.param + " "):
        pytest.fail(
            f"{path} is {proc.stdout.strip()!r}, package.json pins {request.param}; reinstall with:\n    {INSTALL_HINT}",
            pytrace=False,
        )
    return ClaudeCLI(path, version_tuple(proc.stdout))


@pytest.fixture(scope="session")
def claude_bin(claude: ClaudeCLI) -> Path:
    return claude.path


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    api = FakeAPI().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def project(tmp_path: Path, claude: ClaudeCLI, fake_api: FakeAPI) -> Callable[..., Project]:
    """Factory: ``project(name="proj")`` -> an installed :class:`Project` (one HOME per project)."""

    def make(name: str = "proj") -> Project:
        root = tmp_path / name
        home = tmp_path / f"{name}-home"
        root.mkdir()
        home.mkdir()
        (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}), encoding="utf-8")
        proj = Project(root, home, fake_api, claude)
        proc = proj.budget_cli("install", str(root))
        assert proc.returncode == 0, f"install failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        settings = json.loads((root / ".claude" / "settings.json").read_text())
        assert "budget_state.hook" in json.dumps(settings.get("hooks")), settings
        return proj

    return make


@pytest.fixture
def interactive() -> Iterator[Callable[[Project], Interactive]]:
    """Factory: ``interactive(project)`` -> the started TUI of Claude Code in a tmux server of its own.

    Every tmux server started here is killed at teardown (and the CLI with it), pass or fail.
    """
    tmux = tmux_bin()
    started: list[Interactive] = []

    def start(proj: Project, login: str = "api-key") -> Interactive:
        socket = f"claude-budget-e2e-{os.getpid()}-{secrets.token_hex(4)}"
        session = Interactive(proj, socket=socket, tmux=tmux, login=login)
        started.append(session)
        return session.start()

    try:
        yield start
    finally:
        for session in started:
            session.close()
