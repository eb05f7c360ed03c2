#!/bin/sh
# claude-budget's plugin hook: `sh claude-budget.sh EVENT`, the hook event on stdin.
#
# Lessons from official plugins that ship Python hooks (see docs/install.md, "The plugin"): import the code
# relative to this script, not to a fixed install path (the plugin lives in a versioned cache
# folder that every update replaces); probe for a real Python 3; keep dependencies and state
# outside the plugin folder; make the prompt hook answer `decision: "block"` itself.
#
# 1. Where the settings already wire claude-budget (`claude-budget install`, or `--user`) and
#    that hook is found on this machine, those hooks count: this one stands down, so nothing is
#    counted twice.
# 2. No project (no .claude/ folder, or the home folder): the ledger goes in ${CLAUDE_PLUGIN_DATA}.
# 3. Python: ${CLAUDE_PLUGIN_DATA}/venv, made once at SessionStart (python3 -m venv + pip install
#    of hooks/requirements.txt: three small packages); until then the interpreter of a
#    claude-budget-hook on PATH (pipx, uv tool) if there is one. The code is always this plugin's
#    own copy (first on sys.path), its bytecode under ${CLAUDE_PLUGIN_DATA}/pycache.
# 4. Run the hook as a project install does: isolated (python -I), in the background where nobody
#    waits for the answer.
# When no Python can be had, the prompt hook says so once per session; nothing fails per event.

event=${1:-}
case $0 in
/*) here=${0%/*} ;;  # as hooks.json runs it: "${CLAUDE_PLUGIN_ROOT}/hooks/claude-budget.sh"
*) here=$(cd "${0%/*}" 2>/dev/null && pwd) || here=. ;;
esac
root=${here%/*}
config=${CLAUDE_CONFIG_DIR:-$HOME/.claude}
data=${CLAUDE_PLUGIN_DATA:-$config/plugins/data/claude-budget-claude-budget}
project=${CLAUDE_PROJECT_DIR:-.}

# 1. stand down (not for the mod's requests, `Mod`: the mod found no installed claude-budget first)
if [ "$event" != Mod ] && grep -qsE 'claude-budget-hook|budget_state\.hook|budget_hook\.py' \
    "$project/.claude/settings.json" "$project/.claude/settings.local.json" "$config/settings.json"; then
    if [ -x "${CLAUDE_BUDGET_PYTHON:-}" ] || [ -x "$project/.venv/bin/claude-budget-hook" ] \
        || command -v claude-budget-hook >/dev/null 2>&1; then
        exit 0
    fi
fi

say() {  # one line for the user, as the hook protocol wants it (no quotes or backslashes in $1)
    printf '{"systemMessage":"claude-budget: %s"}\n' "$1"
}

bootstrap() {  # make $data/venv; on failure print why and return 1
    mkdir -p "$data" 2>/dev/null || { echo "cannot create $data"; return 1; }
    if ! mkdir "$data/venv.lock" 2>/dev/null; then
        # another session is making it; a lock older than 10 minutes is a killed one's
        if [ -n "$(find "$data/venv.lock" -maxdepth 0 -mmin +10 2>/dev/null)" ]; then
            rmdir "$data/venv.lock" 2>/dev/null
        fi
        echo "its Python environment is being set up by another session"
        return 1
    fi
    [ -x "$data/venv/bin/python" ] && { rmdir "$data/venv.lock"; return 0; }
    found=
    for candidate in "${CLAUDE_BUDGET_BOOTSTRAP_PYTHON:-}" python3 python; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
            found=$candidate
            break
        fi
    done
    if [ -z "$found" ]; then
        rmdir "$data/venv.lock"
        echo "no Python 3.9 or later on PATH: install one, or claude-budget itself (pipx install claude-budget)"
        return 1
    fi
    tmp=$data/venv.tmp.$$
    rm -rf "$tmp"
    log=$data/bootstrap.log
    if "$found" -m venv "$tmp" >"$log" 2>&1 \
        && "$tmp/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$root/hooks/requirements.txt" >>"$log" 2>&1 \
        && mv "$tmp" "$data/venv"; then
        rmdir "$data/venv.lock"
        return 0
    fi
    rm -rf "$tmp"
    rmdir "$data/venv.lock"
    echo "could not set up its Python environment ($found -m venv, then pip install: see $log); install claude-budget with pipx install claude-budget instead"
    return 1
}

# 2. the ledger
if [ -z "${CLAUDE_BUDGET_STATE:-}" ] && { [ ! -d "$project/.claude" ] || [ "$project" = "$HOME" ]; }; then
    mkdir -p "$data" 2>/dev/null
    CLAUDE_BUDGET_STATE=$data/budget-ledger.toml
    export CLAUDE_BUDGET_STATE
fi

# 3. the interpreter
py=$data/venv/bin/python
if [ ! -x "$py" ]; then
    if [ "$event" = SessionStart ]; then
        if why=$(bootstrap); then
            say "set up its Python environment in $data/venv (once)"
        else
            say "$why — token budgets are not counted or enforced in this session"
        fi
        exit 0
    fi
    py=
    if hook=$(command -v claude-budget-hook 2>/dev/null) && read -r first <"$hook"; then
        case $first in
        '#!'*sh*) ;;  # pip's exec wrapper for long paths: not worth parsing here
        '#!'*) py=${first#'#!'} ;;
        esac
    fi
    if [ -z "$py" ]; then
        [ "$event" = Mod ] && { echo '{"protocol":1,"absent":true}'; exit 0; }
        [ "$event" = UserPromptSubmit ] || exit 0
        marker="$data/missing.$PPID"
        [ -e "$marker" ] && exit 0
        mkdir -p "$data" 2>/dev/null && : >"$marker" 2>/dev/null
        say "its Python environment is not set up (see $data/bootstrap.log), so token budgets are not counted or enforced; start a new session to try again, or pipx install claude-budget"
        exit 0
    fi
fi
[ "$event" = SessionStart ] && exit 0

# 4. run it, isolated (-I: neither the project folder nor PYTHONPATH can shadow a module; the code is
#    this plugin's own copy, put first on sys.path), its bytecode kept under ${CLAUDE_PLUGIN_DATA}
set -- "$py" -I -X "pycache_prefix=$data/pycache" -c \
    'import sys; sys.path.insert(0, sys.argv.pop(1)); from budget_state.hook import main; sys.exit(main())' "$root"
case $event in
Mod)  # a request of the mod (claude-budget.mod.ts), on stdin; its answer on stdout (isolated too)
    exec "$@" --mod
    ;;
PreToolUse)
    # in the foreground only where it may decide: kill mode or on_error closed (generated from
    # budget_state._wiring.MAY_DECIDE, as the settings line; a test keeps the two equal)
    m=background
    # BEGIN MAY_DECIDE
    case "${CLAUDE_BUDGET_MODE:-} ${CLAUDE_BUDGET_ON_ERROR:-}" in *[Kk][Ii][Ll][Ll]*|*[Cc][Ll][Oo][Ss][Ee][Dd]*) m=wait;; esac; [ "$m" = wait ] || ! grep -Eqis '^[^#]*(mode[^#]*=[^#]*kill|on_error[^#]*=[^#]*closed)' "${CLAUDE_PROJECT_DIR:-.}/.claude/budget.toml" || m=wait;
    # END MAY_DECIDE
    ;;
Stop) m=background; [ "${CLAUDE_CODE_ENTRYPOINT:-}" = cli ] && m=wait ;;
SubagentStop) m=background ;;
*) m=wait ;;
esac
# a waited-for event runs the hook; else it starts it with its stdin and returns at once
if [ "$m" = wait ]; then exec "$@"; fi
exec 3<&0
"$@" --background <&3 3<&- >/dev/null 2>&1 &
exit 0
