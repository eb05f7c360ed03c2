"""Hostile surroundings: symlinks planted at the ledger or its lock, a ledger edited into nonsense,
odd command names, a 100 MB transcript line, a transcript that is a folder, a ledger folder that
cannot be written. Each must end in the documented fail-open behaviour: exit 0, one clear line
(``systemMessage``), nothing on stderr, and no usage lost once the problem is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kit
import pytest
import tomllib

import budget_state
from budget_state._errors import LedgerCorrupt, LedgerError
from budget_state._render import render_status
from budget_state.ledger import _records
from budget_state.ledger._ledger import Ledger

NOT_ENFORCED = " (budgets not enforced for this step)"


def _fails_open(reply: Any, message: str) -> None:
    assert (reply.rc, reply.err) == (0, ""), reply  # rc: a real exit code from hook_proc, else 0
    assert reply.json == {"systemMessage": f"claude-budget: {message}{NOT_ENFORCED}"}, reply


def _start(proj: Any, session: str = "s1", prompt: str = "/alpha go", **kw: Any) -> Any:
    """A session with an open run of /alpha, nothing spent yet."""
    proj.command("alpha", "1M")
    reply = proj.hook("UserPromptSubmit", session, prompt=prompt, prompt_id="p1", **kw)
    assert (reply.out, reply.err) == ("", ""), reply
    t = proj.writer(session)
    t.user("p1")
    return t


# --- symbolic links ----------------------------------------------------------------------------------


@pytest.mark.parametrize("via_env", [True, False], ids=["CLAUDE_BUDGET_STATE", "default-path"])
def test_ledger_symlink_fails_open_and_leaves_the_target_alone(proj: Any, tmp_path: Path, via_env: bool) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "precious.toml"
    target.write_text("schema_version = 1\n# not yours\n")
    link = tmp_path / "state" / "budget-ledger.toml" if via_env else proj.ledger_path
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(target)
    env = {**proj.env, "CLAUDE_BUDGET_STATE": str(link)} if via_env else proj.env
    message = (
        f"the ledger {link} is a symbolic link — point CLAUDE_BUDGET_STATE at the real file instead "
        "(a link would be replaced by the first write)"
    )
    for event, fields in (("UserPromptSubmit", {"prompt": "hi", "prompt_id": "p1"}), ("Stop", {"prompt_id": "p1"})):
        _fails_open(proj.hook_proc(event, env=env, **fields), message)
    with pytest.raises(LedgerError) as err:
        budget_state.snapshot(proj.root, env=env)
    assert str(err.value) == message
    cli = subprocess.run(
        [sys.executable, "-m", "budget_state", "status", "--project", str(proj.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (cli.returncode, cli.stdout, cli.stderr) == (1, "", f"Error: {message}\n")
    assert target.read_text() == "schema_version = 1\n# not yours\n"
    assert os.listdir(elsewhere) == ["precious.toml"]
    assert link.is_symlink()


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_lock_symlink_fails_open_and_loses_nothing(proj: Any, tmp_path: Path, dangling: bool) -> None:
    t = _start(proj)
    target = tmp_path / "elsewhere.txt"
    if not dangling:
        target.write_text("precious\n")
    proj.lock_path.unlink()
    proj.lock_path.symlink_to(target)
    spent = t.response({"input": 100, "output": 20})
    message = (
        f"the ledger lock {proj.lock_path} is a symbolic link — remove it; claude-budget creates the lock file itself"
    )
    _fails_open(proj.hook_proc("SubagentStop", prompt_id="p1"), message)
    _fails_open(proj.hook("Stop", prompt_id="p1"), message)
    if dangling:
        assert not target.exists()  # not created through the link
    else:
        assert target.read_text() == "precious\n"
    proj.lock_path.unlink()  # the user removes it, as told
    assert proj.hook("SessionEnd").out == ""
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent
    assert kit.tokens(state, "/alpha") == spent


# --- a ledger edited into nonsense -------------------------------------------------------------------

BIG = 10**30
HUGE = 10**400  # more than a float holds
WRONG_TYPES: list[tuple[str, str]] = [
    ("strings-for-ints", '[overall]\ninput = "12"\n[commands."/alpha"]\ninput = "5"\nruns = "three"\n'),
    ("negative", '[overall]\ninput = -5\n[commands."/alpha"]\ninput = -7\nruns = -1\n'),
    ("floats-and-dates", '[overall]\ninput = 1.5\noutput = 2026-01-01\n[commands."/alpha"]\ninput = inf\n'),
    ("huge-10e30", f'[overall]\ninput = {BIG}\n[commands."/alpha"]\ninput = {BIG}\n'),
    ("beyond-float", f'[overall]\ninput = {HUGE}\n[commands."/alpha"]\ninput = {HUGE}\n'),
    ("command-is-a-list", 'commands = {"/alpha" = [1, 2]}\n'),
    ("command-is-a-number", 'commands = {"/alpha" = 3}\n'),
    ("runs-not-tables", 'runs = [1, "two", [3], {prompt = 5, command = ["/alpha"]}]\n'),
    ("sessions-not-tables", 'sessions = {s1 = 5, s2 = {files = 3, seen = "now"}}\n'),
    ("models-not-tables", '[overall]\nmodels = 3\n[commands."/alpha"]\nmodels = {claude-sonnet-4-5 = "x"}\n'),
    ("rollup-not-tables", 'rollup = {"/alpha" = 5, "/beta" = {"2026-11-24" = [1]}}\n'),
    ("warned-not-a-number", '[overall]\nwarned = "x"\n[commands."/alpha"]\nwarned = [1]\n'),
]


def _sane(value: Any) -> int:
    # The product's documented range for a count is TOML's integer range, 0 to 2**63 - 1.
    return value if type(value) is int and 0 <= value <= 2**63 - 1 else 0


@pytest.mark.parametrize(("text",), [(t,) for _, t in WRONG_TYPES], ids=[name for name, _ in WRONG_TYPES])
def test_ledger_with_wrong_types_neither_crashes_nor_loses_usage(proj: Any, text: str) -> None:
    proj.command("alpha", "1M")
    proj.ledger_path.write_text("schema_version = 1\n" + text)
    raw = tomllib.loads(proj.ledger_path.read_text())  # what the file says, before the product reads it
    overall = raw.get("overall")
    overall_before = _sane(overall.get("input")) if isinstance(overall, dict) else 0
    commands = raw.get("commands")
    alpha = commands.get("/alpha") if isinstance(commands, dict) else None
    alpha_before = _sane(alpha.get("input")) if isinstance(alpha, dict) else 0
    Ledger(proj.ledger_path).read()  # reads: a field of the wrong kind is an empty one

    snap = budget_state.snapshot(proj.root, env=proj.env)  # status must not crash
    assert snap.overall.usage.input == overall_before
    json.dumps(snap.to_json())
    render_status(snap, width=80, color=False)

    proj.command("alpha", "1M")
    t = proj.writer("s1")
    replies = [proj.hook("UserPromptSubmit", prompt="/alpha go", prompt_id="p1")]
    t.user("p1")
    spent = t.response({"input": 10})
    replies += [proj.hook(event, prompt_id="p1") for event in ("PreToolUse", "SubagentStop", "Stop")]
    for reply in replies:  # threshold notices are fine (the numbers may be huge); a crash is not
        assert reply.err == "", reply
        assert "internal error" not in reply.out, reply
    snap = budget_state.snapshot(proj.root, env=proj.env)
    assert snap.overall.usage.input == overall_before + spent["input"]
    assert snap.commands["/alpha"].usage.input == alpha_before + spent["input"]
    assert snap.commands["/alpha"].runs >= 1


UNPARSABLE = {
    "broken-toml": "schema_version = 1\n[overall\ninput = 5\n",
    "deeply-nested": "schema_version = 1\nx = " + "[" * 5000 + "]" * 5000 + "\n",
    "not-utf8": "schema_version = 1\nx = '\udcff'\n",
}


@pytest.mark.parametrize("text", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
def test_a_ledger_that_does_not_parse_is_moved_aside_not_fatal(proj: Any, text: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    proj.ledger_path.write_bytes(data)
    with pytest.raises(LedgerCorrupt):
        budget_state.snapshot(proj.root, env=proj.env)
    reply = proj.hook("UserPromptSubmit", prompt="hi", prompt_id="p1")
    assert reply.err == "", reply
    message = (reply.json or {}).get("systemMessage", "")
    assert "internal error" not in message and "was corrupt" in message, message
    moved = list(proj.ledger_path.parent.glob("budget-ledger.corrupt-*.toml"))
    assert len(moved) == 1 and moved[0].read_bytes() == data
    assert str(moved[0]) in message
    assert proj.hook("Stop", prompt_id="p1").out == ""
    assert proj.ledger().version == 3


# --- command names -----------------------------------------------------------------------------------

HOSTILE_PROMPTS = {
    "unicode": "/ünïcode now",
    "ansi": "/\x1b[31mred\x1b[0m",
    "ansi-after": "/alpha\x1b[2J",
    "traversal": "/../../etc/passwd",
    "traversal-ns": "/alpha:..:x",
    "slash-in-name": "/alpha/../beta",
    "nul-inside": "/al\x00pha",
    "nul-after": "/alpha\x00 x",
    "nul-before": "\x00/alpha",
    "long": "/" + "a" * 5000,
    "lone-surrogate": "/alpha\ud800",
}


@pytest.mark.parametrize("prompt", list(HOSTILE_PROMPTS.values()), ids=list(HOSTILE_PROMPTS))
def test_hostile_command_names_are_plain_prompts(proj: Any, prompt: str) -> None:
    proj.command("alpha", 1)  # any run of /alpha would be over budget at once
    proj.env["CLAUDE_BUDGET_MODE"] = "block"
    raw = json.dumps(proj.payload("UserPromptSubmit", session="s1", prompt=prompt, prompt_id="p1")).encode()
    reply = proj.hook_proc("UserPromptSubmit", raw=raw)
    assert (reply.rc, reply.out, reply.err) == (0, "", ""), reply
    t = proj.writer("s1")
    t.user("p1")
    spent = t.response({"input": 3, "output": 4})
    assert proj.hook("Stop", prompt_id="p1").out == ""
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent
    assert _records.command_names(state) == []
    assert set(os.listdir(proj.root / ".claude")) <= {
        "budget-cache.json",
        "budget-ledger.toml",
        "budget-ledger.toml.lock",
        "budget-ledger.d",
        "commands",
    }
    parts = proj.root / ".claude" / "budget-ledger.d"  # one file per session and scope, none outside its folder
    assert set(os.listdir(parts)) <= {"sessions", "minutes", "quarters", "commands"}
    assert not (parts / "commands").exists()


@pytest.mark.parametrize("name", ["/\x1b[2J\x1b[31mevil", "../../etc/passwd", "/a\x00b", "/ünï", "/a\nb"])
def test_odd_names_recorded_through_the_api_are_shown_safely(proj: Any, name: str) -> None:
    budget_state.record_usage({"input": 5}, command=name, project=proj.root, env=proj.env)
    snap = budget_state.snapshot(proj.root, env=proj.env)
    assert snap.overall.usage.input == 5
    text = render_status(snap, width=80, color=False)
    assert not any(c in text for c in "\x1b\x00"), text
    reply = proj.hook("UserPromptSubmit", prompt="/budget", prompt_id="p1")
    assert reply.err == ""
    shown = reply.json
    assert shown is not None and shown["decision"] == "block"
    assert not any(c in shown["reason"] for c in "\x1b\x00"), shown["reason"]
    assert not (proj.root / "etc").exists() and not (proj.root.parent / "etc").exists()


def test_odd_names_in_the_config_are_refused_with_a_printable_message(proj: Any) -> None:
    (proj.root / ".claude" / "budget.toml").write_text('[commands."/\\u001b[31mred"]\ntokens = 5\n')
    reply = proj.hook_proc("UserPromptSubmit", prompt="hi", prompt_id="p1")
    assert (reply.rc, reply.err) == (0, "")
    message = (reply.json or {}).get("systemMessage", "")
    assert message.startswith("claude-budget: command ") and message.endswith(NOT_ENFORCED), message
    assert "\x1b" not in message


# --- a 100 MB transcript line ------------------------------------------------------------------------

MEASURE = """
import json, resource, subprocess, sys, time
payload, limit, cap = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]) << 20

def cap_memory():  # a runaway hook gets MemoryError instead of eating the machine
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

start = time.monotonic()
with open(payload, "rb") as stdin:
    try:
        p = subprocess.run(sys.argv[4:], stdin=stdin, capture_output=True, timeout=limit, preexec_fn=cap_memory)
        result = {"rc": p.returncode, "out": p.stdout.decode(), "err": p.stderr.decode()}
    except subprocess.TimeoutExpired:
        result = {"rc": None, "out": "", "err": "still running after %g s: killed" % limit}
result["elapsed"] = time.monotonic() - start
result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(result))
"""
MAX_RSS_MB = 150  # the hook's peak resident memory; it needs about 50 MB
CAP_MB = 1024  # its address space, so a runaway read fails fast instead of swapping
LIMIT = 10.0  # seconds


def _measured_hook(proj: Any, tmp_path: Path, event: str, *, limit: float = LIMIT, **fields: Any) -> dict[str, Any]:
    """Run the hook as a grandchild, so that RUSAGE_CHILDREN of its parent is the hook's peak alone.

    :param limit: seconds before the hook is killed (then ``rc`` is None).
    """
    payload = tmp_path / f"{event}.json"
    payload.write_text(json.dumps(proj.payload(event, session="s1", **fields)))
    measure = [sys.executable, "-c", MEASURE, str(payload), str(limit), str(CAP_MB)]
    proc = subprocess.run(
        [*measure, sys.executable, "-m", "budget_state.hook"],
        capture_output=True,
        env=proj.env,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


@pytest.mark.parametrize("written_in_two", [False, True], ids=["whole", "half-then-rest"])
def test_a_100mb_line_is_skipped_in_bounded_memory(proj: Any, tmp_path: Path, written_in_two: bool) -> None:
    t = _start(proj)
    try:
        _huge_line(proj, tmp_path, t, written_in_two)
    finally:
        t.path.unlink()  # pytest keeps the last runs' tmp folders: do not keep 100 MB in each


def _huge_line(proj: Any, tmp_path: Path, t: Any, written_in_two: bool) -> None:
    head = b'{"type":"assistant","requestId":"big","message":{"id":"big","model":"m",'
    head += b'"usage":{"input_tokens":999999},"content":"'
    chunk = b"x" * (1 << 20)
    with open(t.path, "ab") as f:
        f.write(head)
        for _ in range(50):
            f.write(chunk)
    if written_in_two:  # a hook reads while the huge line is still being written
        run = _measured_hook(proj, tmp_path, "PreToolUse", prompt_id="p1")
        assert (run["rc"], run["out"], run["err"]) == (0, "", ""), run
        assert run["maxrss_kb"] < MAX_RSS_MB * 1024, f"peak RSS {run['maxrss_kb'] // 1024} MB"
    with open(t.path, "ab") as f:
        for _ in range(50):
            f.write(chunk)
        f.write(b'"}}\n')
    spent = t.response({"input": 5, "output": 6, "cache_read": 7})
    run = _measured_hook(proj, tmp_path, "SubagentStop", prompt_id="p1")
    assert (run["rc"], run["err"]) == (0, ""), run
    assert run["out"] == "" or json.loads(run["out"])["systemMessage"].startswith("claude-budget: "), run
    assert run["maxrss_kb"] < MAX_RSS_MB * 1024, f"peak RSS {run['maxrss_kb'] // 1024} MB"
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent
    assert kit.tokens(state, "/alpha") == spent


def test_absurd_usage_numbers_in_a_transcript_do_not_break_later_hooks(proj: Any) -> None:
    """A usage value beyond any float (or TOML's 64 bits) must not make every later hook and status fail."""
    t = _start(proj)
    t.response({"input": 10**400})
    spent = t.response({"input": 5})
    replies = [proj.hook(event, prompt_id="p1") for event in ("PreToolUse", "Stop")]
    replies.append(proj.hook("UserPromptSubmit", prompt="/alpha again", prompt_id="p2"))
    for reply in replies:
        assert reply.err == "", reply
        assert "internal error" not in reply.out, reply
    snap = budget_state.snapshot(proj.root, env=proj.env)
    assert snap.overall.usage.input >= spent["input"]
    render_status(snap, width=80)


WAITING_HOOKS = {
    # kill mode's PreToolUse looks for its tool_use_id in the transcript before judging
    "kill-PreToolUse": ("PreToolUse", {"tool_name": "Bash", "tool_use_id": "toolu_01"}, "kill"),
    # Stop (any mode) looks for the turn's last_assistant_message
    "Stop": ("Stop", {"last_assistant_message": "Done."}, "warn"),
}


@pytest.mark.parametrize("waiting", list(WAITING_HOOKS))
@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_special_file_transcripts_neither_hang_nor_eat_memory(
    proj: Any, tmp_path: Path, kind: str, waiting: str
) -> None:
    """A hook that waits for its response to reach the transcript must not read /dev/zero to the end,
    nor block on a named pipe nobody writes (the hook gets 5 s and 1 GiB of address space here)."""
    if kind == "fifo":
        special = tmp_path / "fifo.jsonl"
        os.mkfifo(special)
    else:
        special = Path("/dev/zero")
    event, extra, mode = WAITING_HOOKS[waiting]
    proj.command("alpha", "1M")
    proj.env["CLAUDE_BUDGET_MODE"] = mode
    fields = {"transcript_path": str(special), "prompt_id": "p1"}
    # first sight of the session: its transcript is not read yet, so there is nothing to say
    assert proj.hook("UserPromptSubmit", prompt="/alpha go", **fields).out == ""
    run = _measured_hook(proj, tmp_path, event, limit=5.0, **fields, **extra)
    assert (run["rc"], run["err"]) == (0, ""), run
    assert "internal error" not in run["out"], run
    assert run["maxrss_kb"] < MAX_RSS_MB * 1024, run


# --- a transcript that is a folder ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["transcript_path", "agent_transcript_path"])
def test_a_transcript_that_is_a_folder_is_reported_and_harmless(proj: Any, key: str) -> None:
    folder = proj.home / "weird.jsonl"
    folder.mkdir()
    t = _start(proj)
    spent = t.response({"input": 11})
    fields: dict[str, Any] = {"prompt_id": "p1", key: str(folder)}
    if key == "transcript_path":
        assert proj.hook("UserPromptSubmit", "s2", prompt="hi", **fields).out == ""  # first sight: nothing to say
    event = "Stop" if key == "transcript_path" else "SubagentStop"
    reply = proj.hook_proc(event, "s2" if key == "transcript_path" else "s1", **fields)
    assert (reply.rc, reply.err) == (0, ""), reply
    message = (reply.json or {}).get("systemMessage", "")
    assert message.startswith("claude-budget: ") and str(folder) in message and "not a regular file" in message, reply
    assert "\n" not in message
    assert proj.hook("Stop", prompt_id="p1").out == ""
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent


# --- a ledger folder that cannot be written (also as root) ---------------------------------------------


def test_ledger_folder_that_is_a_regular_file(proj: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    env = {**proj.env, "CLAUDE_BUDGET_STATE": str(blocker / "state" / "budget-ledger.toml")}
    reply = proj.hook_proc("UserPromptSubmit", prompt="hi", prompt_id="p1", env=env)
    _fails_open(reply, f"cannot create the ledger folder {blocker / 'state'}: Not a directory")
    assert blocker.read_text() == "a file, not a folder\n"


def test_ledger_path_that_is_a_folder(proj: Any, tmp_path: Path) -> None:
    folder = tmp_path / "budget-ledger.toml"
    folder.mkdir()
    env = {**proj.env, "CLAUDE_BUDGET_STATE": str(folder)}
    reply = proj.hook_proc("UserPromptSubmit", prompt="hi", prompt_id="p1", env=env)
    _fails_open(reply, f"cannot read the ledger {folder}: Is a directory")
    assert os.listdir(folder) == []


def test_ledger_under_proc_cannot_be_created_even_as_root(proj: Any) -> None:
    env = {**proj.env, "CLAUDE_BUDGET_STATE": "/proc/self/budget-ledger.toml"}
    reply = proj.hook_proc("UserPromptSubmit", prompt="hi", prompt_id="p1", env=env)
    assert (reply.rc, reply.err) == (0, ""), reply
    message = (reply.json or {}).get("systemMessage", "")
    assert message.startswith("claude-budget: cannot open the ledger lock /proc/self/budget-ledger.toml.lock: "), (
        message
    )
    assert message.endswith(NOT_ENFORCED)


def test_ledger_folder_swapped_for_a_file_loses_nothing(proj: Any, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    proj.env["CLAUDE_BUDGET_STATE"] = str(state_dir / "budget-ledger.toml")
    t = _start(proj)
    spent = t.response({"input": 40, "output": 2})
    state_dir.rename(tmp_path / "state-away")
    state_dir.write_text("in the way\n")
    reply = proj.hook_proc("SubagentStop", prompt_id="p1")
    _fails_open(reply, f"cannot create the ledger folder {state_dir}: File exists")
    state_dir.unlink()
    (tmp_path / "state-away").rename(state_dir)
    assert proj.hook("Stop", prompt_id="p1").out == ""
    state = Ledger(state_dir / "budget-ledger.toml").read()
    assert kit.tokens(state, "overall") == spent
    assert kit.tokens(state, "/alpha") == spent


def _read_only_runner(folder: Path) -> tuple[str, list[str]]:
    """How to run a command with ``folder`` read-only: chmod for a normal user; as root (which
    ignores permissions) a read-only bind mount in a private mount namespace (``unshare -m``)."""
    if os.geteuid() != 0:
        return "chmod", []
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without unshare(1): covered by the /proc and file-as-folder tests")
    mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    wrap = [unshare, "-m", "sh", "-c", mount, str(folder)]
    probe = subprocess.run([*wrap, "true"], capture_output=True, timeout=60, check=False)
    if probe.returncode != 0:
        pytest.skip(
            f"root without a private mount namespace ({probe.stderr.decode().strip()}): covered by the /proc test"
        )
    return "mount", wrap


def test_read_only_ledger_folder_fails_open_and_loses_nothing(proj: Any) -> None:
    t = _start(proj)
    spent = t.response({"input": 9, "output": 1, "cache_creation": 3})
    folder = proj.ledger_path.parent
    before = proj.ledger_path.read_bytes()
    how, wrap = _read_only_runner(folder)
    payload = json.dumps(proj.payload("SubagentStop", session="s1", prompt_id="p1")).encode()
    if how == "chmod":
        folder.chmod(0o555)
    try:
        proc = subprocess.run(
            [*wrap, sys.executable, "-m", "budget_state.hook"],
            input=payload,
            capture_output=True,
            env=proj.env,
            timeout=60,
            check=False,
        )
    finally:
        folder.chmod(0o755)
    assert (proc.returncode, proc.stderr) == (0, b""), proc
    message = json.loads(proc.stdout)["systemMessage"]
    assert message.startswith("claude-budget: cannot ") and str(folder) in message, message
    assert message.endswith(NOT_ENFORCED), message
    assert proj.ledger_path.read_bytes() == before
    assert proj.hook("Stop", prompt_id="p1").out == ""  # writable again: the missed step is counted now
    state = proj.ledger()
    assert kit.tokens(state, "overall") == spent
    assert kit.tokens(state, "/alpha") == spent


# --- stdin that no Claude Code would send ---------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000], ids=["deep-array", "deep-object"])
def test_deeply_nested_input_is_bad_input_not_an_internal_error(proj: Any, raw: bytes) -> None:
    reply = proj.hook("Stop", raw=raw)
    assert reply.err == "", reply
    message = (reply.json or {}).get("systemMessage", "")
    assert message.startswith("claude-budget: the hook input is not JSON"), message
