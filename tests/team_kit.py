"""Simulated machines on one team: separate project folders and ledgers, real hook processes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import kit
import psycopg

from budget_state.ledger import _records
from budget_state.ledger._ledger import Ledger
from budget_state.ledger._state import LedgerState

_ids = itertools.count(1)


def server_url(server: object) -> str:
    return server if isinstance(server, str) else str(server.url)  # type: ignore[attr-defined]


def new_team() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class Machine:
    """One machine of a team: a project with its own ledger and transcript, driven by hook processes."""

    def __init__(
        self, root: Path, url: str, team: str, *, mode: str = "block", extra: str = "", timeout: float = 3.0
    ) -> None:
        self.root = root / "proj"
        self.home = root / "home"
        (self.root / ".claude").mkdir(parents=True)
        (self.home / ".claude").mkdir(parents=True)
        self.transcript = self.home / ".claude" / "projects" / "p" / "sess-1.jsonl"
        self.transcript.parent.mkdir(parents=True)
        (self.root / ".claude" / "budget.toml").write_text(
            f'mode = "{mode}"\nteam_url = "{url}"\nteam = "{team}"\n{extra}'
        )
        self.env: Dict[str, str] = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_")},
            "CLAUDE_PROJECT_DIR": str(self.root),
            "HOME": str(self.home),
            # Several hook processes at once on a 2-core CI machine can take more than the default
            # 0.5 s to connect; the bound itself is tested on its own.
            "CLAUDE_BUDGET_TEAM_TIMEOUT": str(timeout),
        }
        self.session = "sess-1"
        self.refused: List[str] = []
        self.notes: List[str] = []

    def spend(self, prompt_id: str, tokens: int) -> None:
        kit.Transcript(self.transcript).spend(prompt_id, tokens, repeats=1)

    def hook(self, event: str, *, background: bool = False, **fields: Any) -> Optional[Dict[str, Any]]:
        payload = kit.payload(event, session=self.session, transcript=self.transcript, cwd=self.root, **fields)
        proc = subprocess.run(
            [sys.executable, "-m", "budget_state.hook", *(["--background"] if background else [])],
            input=json.dumps(payload).encode(), env=self.env, capture_output=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        reply = json.loads(proc.stdout) if proc.stdout.strip() else None
        if reply and reply.get("systemMessage"):
            self.notes.append(reply["systemMessage"])
        return reply

    def turn(self, tokens: int, *, spend: bool = True, stop: bool = True) -> bool:
        """One prompt: True if it was allowed (and then spent ``tokens``)."""
        pid = f"p{next(_ids)}"
        reply = self.hook("UserPromptSubmit", prompt="hello", prompt_id=pid)
        if reply and reply.get("decision") == "block":
            self.refused.append(reply["reason"])
            return False
        if spend:
            self.spend(pid, tokens)
        if stop:
            self.hook("Stop", background=True, prompt_id=pid)
        return True

    def end(self) -> None:
        self.hook("SessionEnd", prompt_id="end", reason="other")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "budget_state", *args, "--project", str(self.root)],
                              env=self.env, capture_output=True, text=True, timeout=60)

    def ledger(self) -> LedgerState:
        return Ledger(self.root / ".claude" / "budget-ledger.toml").read()

    def team_table(self) -> Dict[str, Any]:
        """The team's own table in this machine's ledger (the team feature owns its inside)."""
        table = _records.feature_table(self.ledger(), "team")
        assert table is not None, f"no team table in {self.root}"
        return table

    def local_total(self) -> int:
        return _records.scope(self.ledger(), "overall").usage.total()


def counters(url: str, team: str) -> List[Dict[str, Any]]:
    """Every budget's counter, with the sum over its active leases of what they still hold."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT b.scope, b.metric, c.period, c.spent, c.leased,
                      (SELECT coalesce(sum(GREATEST(l.granted - l.spent, 0)), 0) FROM claude_budget_lease l
                       WHERE l.budget_id = b.id AND l.period = c.period AND l.state = 'active') AS held,
                      (SELECT coalesce(sum(l.spent), 0) FROM claude_budget_lease l
                       WHERE l.budget_id = b.id AND l.period = c.period) AS lease_spent
               FROM claude_budget_budget b JOIN claude_budget_counter c ON c.budget_id = b.id
               WHERE b.team = %s ORDER BY b.id, c.period""",
            (team,),
        ).fetchall()
    keys = ("scope", "metric", "period", "spent", "leased", "held", "lease_spent")
    return [dict(zip(keys, r)) for r in rows]
