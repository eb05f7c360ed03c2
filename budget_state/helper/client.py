"""The hook's client side: the bash a hook line runs to hand its event to the resident helper.

It is text, not code that runs here: ``_wiring.hook_command`` puts it in the settings line as
``bash -c '<CLIENT>' claude-budget <wait|background> <the hook's own command...>``. It starts no
process of its own on the way to an answer (everything is a bash builtin, but for bash < 5, which
reads the event with ``cat``), which is the whole point: a bash is ~1.5 ms, a Python ~27 ms before
it imports anything.

What it does, and why each step is safe (the helper side is :mod:`budget_state.helper.server`):

1. reads the event from stdin (so that every way out below can still hand it to the hook);
2. finds the helper of *this* hook command: ``<cache>/claude-budget/helper/<key>.endpoint``, where
   the key is the command with ``PYTHONPATH`` (one helper per interpreter and code; several
   projects share it). The file is ``port client-token server-token pid``, mode 0600 in a 0700
   folder under ``$HOME``: another user can neither read it nor plant one;
3. connects to ``127.0.0.1:port`` and waits up to 2 s for the server token, so that nothing is sent
   to a port some other process now holds, and a helper that does not answer costs 2 s once;
4. sends ``client-token NUL mode NUL cwd NUL`` + the exported environment (``NAME=value NUL``
   each) + ``NUL`` + the event + ``NUL`` (hook input is JSON: it holds no NUL byte). Where
   ``/proc/$$/environ`` is readable (Linux) the environment is ``@<pid> NUL`` instead: the helper,
   same user, reads it there, and the whole request is one ``printf``;
5. ``wait``: reads ``ok`` and then the hook's one line of output, prints it, exits 0.
   ``background``: steps 2-5 run in a background subshell (its stdio away from Claude Code's
   pipes), so Claude Code waits for the bash start alone; the subshell reads ``accepted`` (the
   helper has the whole request: the environment in ``/proc`` is read while the subshell is alive)
   and exits.
   ``stale``: the helper's code is not the code on disk any more; it did nothing with the event.

``decide`` (PreToolUse) is ``wait`` where the hook may have to answer (kill mode, on_error closed:
the same test as the sh line's grep, with bash's own regex), else ``background``.

Any other outcome runs the hook itself, exactly as a line without a helper would, with
``CLAUDE_BUDGET_HELPER_KEY`` and ``CLAUDE_BUDGET_HELPER_WHY`` (``missing``, ``refused``, ``silent``,
``foreign``, ``stale``, ``lost``) set, so that the hook can (re)start the helper for the next event. The only
outcome after which the helper may already have handled the event is ``lost`` (no answer within
:data:`REPLY_TIMEOUT` s of sending it): the hook then stops that helper, whose children included,
before it settles the event itself, and settling twice counts nothing twice (cursors).

Written for bash 3.2 (macOS) and later: no ``$EPOCH*``, integer ``read -t``.
"""

from __future__ import annotations

from typing import Final

#: Seconds to wait for the helper's greeting: it comes from a fork of an idle process, within ms.
GREETING_TIMEOUT: Final = 2
#: Seconds to wait for a hook's answer. Above the hook's own worst case (the 5 s default
#: lock_timeout, plus the 0.25 s wait for the transcript) and below Claude Code's 30 s limit, so a
#: wedged helper still leaves the hook time to answer by itself.
REPLY_TIMEOUT: Final = 20
#: Longest key kept in a file name (the end of the command, where paths differ).
KEY_CHARS: Final = 160

CLIENT: Final = (
    "m=$1; shift; "
    # PreToolUse: whether the hook must answer (kill mode, on_error closed), as _wiring's sh line
    # tells it with grep, here with builtins.
    'if [ "$m" = decide ]; then m=background; '
    'case "${CLAUDE_BUDGET_MODE:-} ${CLAUDE_BUDGET_ON_ERROR:-}" in '
    "*[Kk][Ii][Ll][Ll]*|*[Cc][Ll][Oo][Ss][Ee][Dd]*) m=wait;; esac; "
    'f="${CLAUDE_PROJECT_DIR:-.}/.claude/budget.toml"; '
    'if [ "$m" = background ] && [ -r "$f" ]; then f=$(<"$f"); printf -v l "\\n"; '
    'r="(^|$l)[^#$l]*(mode[^#$l]*=[^#$l]*kill|on_error[^#$l]*=[^#$l]*closed)"; '
    "shopt -s nocasematch; [[ $f =~ $r ]] && m=wait; shopt -u nocasematch; fi; fi; "
    'k="$*|${PYTHONPATH:-}"; k=${k//[^A-Za-z0-9._-]/_}; '
    f"[ ${{#k}} -gt {KEY_CHARS} ] && k=${{k: -{KEY_CHARS}}}; "
    'e="${XDG_CACHE_HOME:-$HOME/.cache}/claude-budget/helper/$k.endpoint"; '
    # The event, whole: Claude Code's stdin is a socket (not /dev/stdin-able); read -N reads it in
    # blocks where bash's other reads take a byte per call (bash 3.2 and 4 have cat instead).
    'if [ "${BASH_VERSINFO[0]}" -ge 5 ]; then IFS= read -r -d "" -N 67108864 p; else p=$(cat); fi; '
    # hand: give the event to the helper, or run the hook; in the background for an event nobody
    # waits for, so Claude Code waits for bash alone (the subshell has its own pid: BASHPID).
    "hand() { w=missing; i=${BASHPID:-$$}; "
    'if { read -r n c s _ <"$e"; } 2>/dev/null; then w=refused; '
    'if { exec 4<>"/dev/tcp/127.0.0.1/$n"; } 2>/dev/null; then w=silent; '
    f"if IFS= read -r -t {GREETING_TIMEOUT} -u 4 h 2>/dev/null; then w=foreign; "
    '[ "$h" = stale ] && w=stale; '
    'if [ "$h" = "$s" ]; then w=lost; '
    'if [ -r "/proc/$i/environ" ]; then printf "%s\\0%s\\0%s\\0@%s\\0\\0%s\\0" "$c" "$m" "$PWD" "$i" "$p"; '
    'else { printf "%s\\0%s\\0%s\\0" "$c" "$m" "$PWD"; '
    'for v in $(compgen -e); do printf "%s=%s\\0" "$v" "${!v}"; done; '
    'printf "\\0%s\\0" "$p"; }; fi >&4 2>/dev/null; '
    f"if IFS= read -r -t {REPLY_TIMEOUT} -u 4 h 2>/dev/null; then "
    'case $h in ok) IFS= read -r -u 4 o 2>/dev/null; [ -n "$o" ] && printf "%s\\n" "$o"; exit 0;; '
    "accepted) exit 0;; stale) w=stale;; esac; "
    "fi; fi; fi; exec 4>&-; fi; fi; "
    "export CLAUDE_BUDGET_HELPER_KEY=$k CLAUDE_BUDGET_HELPER_WHY=$w; "
    '[ "$m" = wait ] && exec "$@" <<<"$p"; '
    '"$@" --background <<<"$p" >/dev/null 2>&1 & exit 0; }; '
    'if [ "$m" = background ]; then hand "$@" </dev/null >/dev/null 2>&1 & exit 0; fi; hand "$@"'
)

#: The plugin's copy (``plugin/hooks/helper-client.bash``, run as ``bash FILE MODE HOOK...``): the
#: plugin's runner is a static shell script. ``python -m budget_state.helper.client`` prints it;
#: a test keeps the two the same.
PLUGIN_FILE_HEADER: Final = (
    "# The hook's client side of claude-budget's resident helper, for the plugin's runner.\n"
    "# Generated from budget_state/helper/client.py: python -m budget_state.helper.client > this file\n"
)


def plugin_file() -> str:
    return PLUGIN_FILE_HEADER + CLIENT + "\n"


if __name__ == "__main__":
    print(plugin_file(), end="")
