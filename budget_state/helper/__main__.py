"""``python -m budget_state.helper serve KEY``: what a hook starts when no helper answered it."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "serve":
        from .server import serve

        return serve(argv[1])
    sys.stderr.write("usage: python -m budget_state.helper serve KEY (hooks start it; see claude-budget helper)\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
