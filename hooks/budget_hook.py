#!/usr/bin/env python3
"""Entry script for this repository's own Claude Code hooks (see .claude/settings.json).

Projects wired with `claude-budget install` run `<python> -m budget_state.hook` instead; both end
up in budget_state.hook.main. Run it with the interpreter that has budget_state installed.
"""

from budget_state.hook import main

raise SystemExit(main())
