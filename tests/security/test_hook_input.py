"""The hook's only input is the event on stdin: any bytes give one protocol reply or none.

Claude Code obeys what a hook prints. Whatever arrives (random bytes, truncated JSON, huge or
nested fields, the wrong types), the hook must answer with nothing, or with one JSON object whose
keys are the few this product uses — never plain text (UserPromptSubmit's stdout would go to the
model), never ``additionalContext``, a permission decision or a rewritten tool input — and never
a traceback.
"""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget_state import hook

ALLOWED = {"decision", "reason", "continue", "stopReason", "systemMessage"}
EVENTS = ["UserPromptSubmit", "PreToolUse", "SubagentStop", "Stop", "StopFailure", "SessionEnd", "Other", ""]
PACKAGE = Path(hook.__file__).parent

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _answer(raw: bytes, root: Path, args: list[str]) -> str:
    out = io.StringIO()
    env = {"CLAUDE_PROJECT_DIR": str(root), "HOME": str(root / "home")}
    assert hook.main(args, stdin=io.BytesIO(raw), stdout=out, env=env) == 0
    return out.getvalue()


def _check(text: str) -> None:
    if not text:
        return
    assert text.endswith("\n") and text.count("\n") == 1, text
    reply = json.loads(text)
    assert isinstance(reply, dict) and set(reply) <= ALLOWED, reply
    assert "Traceback" not in text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2048), background=st.booleans())
def test_random_bytes(tmp_path: Path, raw: bytes, background: bool) -> None:
    _check(_answer(raw, tmp_path, ["--background"] if background else []))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.sampled_from(EVENTS),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "session_id",
                "prompt",
                "prompt_id",
                "transcript_path",
                "cwd",
                "tool_name",
                "tool_input",
                "agent_id",
                "agent_transcript_path",
                "reason",
                "source",
                "stop_hook_active",
            ]
        ),
        json_values,
        max_size=8,
    ),
    cut=st.integers(min_value=0, max_value=64),
)
def test_events_of_any_shape_whole_or_truncated(tmp_path: Path, event: str, fields: dict, cut: int) -> None:
    raw = json.dumps({"hook_event_name": event, **fields}).encode()
    _check(_answer(raw, tmp_path, []))
    _check(_answer(raw[: max(0, len(raw) - cut)], tmp_path, []))


def test_huge_and_deeply_nested_fields(tmp_path: Path) -> None:
    (tmp_path / ".claude" / "commands").mkdir(parents=True)
    (tmp_path / ".claude" / "commands" / "x.md").write_text("---\ntokenBudget: 10\n---\nx\n")
    for raw in (
        json.dumps({"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt": "/x " + "A" * 16_000_000}),
        '{"hook_event_name": "UserPromptSubmit", "prompt": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({"hook_event_name": "PreToolUse", "session_id": "s" * 1_000_000, "transcript_path": "/dev/zero"}),
        json.dumps({"hook_event_name": "Stop", "session_id": "s", "transcript_path": "../../../../proc/self/environ"}),
    ):
        _check(_answer(raw.encode(), tmp_path, []))


def test_no_module_but_the_orchestrator_signals_a_process() -> None:
    """The hook path signals nothing (0.4's helper children once SIGTERMed a stranger: the parent's
    pid after it had exited). Only the orchestrator stops processes: the instances it started.
    ``os.kill(pid, 0)`` sends no signal (a liveness probe: the mod's handshake) and is allowed."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name, args = node.func.attr, node.args
                probe = name == "kill" and len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value == 0
                if name in ("kill", "killpg", "pidfd_send_signal") and not probe:
                    calls.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
            if isinstance(node, ast.Attribute) and node.attr == "getppid":
                calls.append(f"{path.relative_to(PACKAGE)}:{node.lineno} getppid")
    assert all(c.startswith("orchestrator/") for c in calls), calls
