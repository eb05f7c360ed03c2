"""The Claude Code hook: hook JSON on stdin -> settle usage, decide -> Claude Code's JSON on stdout.

Run as ``<python> -I -m budget_state.hook`` (:mod:`.__main__`) for UserPromptSubmit, PreToolUse,
SubagentStop, Stop, StopFailure and SessionEnd (``claude-budget install`` wires them). This is the
only part that speaks the hook protocol (checked on Claude Code 2.1.197):

- silent on success (plain stdout from UserPromptSubmit would be added to the model's context);
- refusing a prompt: exit 0 with ``{"decision": "block", "reason": …}`` — no API request is made,
  and the user sees the reason (that is also how ``/budget`` is answered, for free);
- stopping a running turn (kill mode): PreToolUse ``continue: false`` — the turn ends after that
  tool (adding ``permissionDecision: "deny"`` would cancel the stop on 2.1.197);
- telling the user something: ``{"systemMessage": …}``; never ``decision: "block"`` on Stop
  (that would make Claude go on).

Its parts: :mod:`._protocol` (stdin, reply, exit code, failures), :mod:`._event` (the typed input),
:mod:`._cases` (which use case answers which event), :mod:`._prompt` (a prompt, a turn Claude Code
started itself, ``/budget``) and :mod:`._response` (a tool call, a stop, the session's end), with
what they share in :mod:`._turn`. Importing this package loads only the first two.

Events whose answer nobody waits for run in the background (``--background``, see
:data:`BACKGROUND_EVENTS`): they settle the count and decide nothing.

Failures fail open by default: one visible line, the session goes on (``on_error = "closed"``
refuses instead). Never a traceback: set ``CLAUDE_BUDGET_DEBUG=1`` to get one on stderr.
"""

from __future__ import annotations

from ._protocol import main as main

__all__ = ["BACKGROUND_EVENTS", "main"]

# Events whose answer nobody waits for. Install runs them in the background: a shell line starts
# the hook with `--background` and returns at once, so Claude Code waits ~1 ms, not a Python
# start (see _install.hook_command). Not Claude Code's own `"async": true`: in `claude -p` an
# async hook still running when the CLI exits makes 2.1.197 skip SessionEnd and 2.1.332 wait
# ~1.5 s before it. Stop and SubagentStop never decide; PreToolUse decides only in kill mode or
# when it must fail closed (on_error = "closed"), which the shell line checks before it
# backgrounds it. UserPromptSubmit decides (and answers /budget); SessionEnd settles the end of a
# run before `claude -p` exits; StopFailure is rare: those always run in the foreground.
BACKGROUND_EVENTS = ("PreToolUse", "SubagentStop", "Stop")
