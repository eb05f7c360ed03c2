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

import psycopg

from budget_state._accounting import transcript_time
from budget_state.ledger._ledger import Ledger

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
        n = next(_ids)
        usage = {"input_tokens": tokens, "output_tokens": 0, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        line = {"type": "assistant", "requestId": f"req{n}", "timestamp": transcript_time(),
                "message": {"id": f"msg{n}", "model": "claude-sonnet-4-5", "usage": usage}}
        with open(self.transcript, "a") as f:
            f.write(json.dumps({"type": "user", "promptId": prompt_id, "message": {"content": "x"}}) + "\n")
            f.write(json.dumps(line) + "\n")

    def hook(self, event: str, *, background: bool = False, **fields: Any) -> Optional[Dict[str, Any]]:
        payload = {"session_id": self.session, "transcript_path": str(self.transcript), "cwd": str(self.root),
                   "hook_event_name": event, **fields}
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

    def ledger(self) -> Dict[str, Any]:
        return Ledger(self.root / ".claude" / "budget-ledger.toml").read()

    def local_total(self) -> int:
        o = self.ledger().get("overall", {})
        return sum(int(o.get(k, 0)) for k in ("input", "output", "cache_creation", "cache_read"))


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
