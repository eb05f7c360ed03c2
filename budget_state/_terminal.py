"""What the terminal the output goes to can show: colour (``--color``, NO_COLOR, FORCE_COLOR, a tty)
and width (``COLUMNS``, the tty's). For every command that draws: status, watch, the statusline
and the orchestrator's live report."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO


def use_color(choice: str, /, *, stream: TextIO, env: Mapping[str, str]) -> bool:
    """``--color`` beats the environment; NO_COLOR beats FORCE_COLOR; "auto" needs a real tty."""
    if choice != "auto":
        return choice == "always"
    if env.get("NO_COLOR"):  # https://no-color.org: set and non-empty
        return False
    if env.get("FORCE_COLOR", "") not in ("", "0", "false"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and env.get("TERM") != "dumb"


def terminal_width(*, stream: TextIO, env: Mapping[str, str]) -> int:
    """``COLUMNS``, else the terminal's width, else 80."""
    try:
        columns = int(env.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):  # not a tty, or a stream without a descriptor
        return 80
