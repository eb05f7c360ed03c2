"""``python -I -m budget_state.hook``: what every hook line in settings.json (and the plugin, and the mod) runs."""

from __future__ import annotations

from ._protocol import main

if __name__ == "__main__":
    raise SystemExit(main())
