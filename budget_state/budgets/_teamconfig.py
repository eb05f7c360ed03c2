"""Team settings: ``team_url``, ``team`` and ``on_team_unreachable``, validated (core: the settings
are read for every project; the team engine in budget_state.team uses them).

A password never comes from a committed file: libpq takes it from ``PGPASSWORD`` or ``~/.pgpass``
(``PGPASSFILE``), or it is in ``CLAUDE_BUDGET_TEAM_URL``, which lives in the environment only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from budget_state._errors import ConfigError

UNREACHABLE_CHOICES = ("use-lease-then-warn", "block")
_URL_FIX = 'write e.g. team_url = "postgresql://claude_budget@db.example.com:5432/budgets"'


def _text(key: str, value: object, where: str, path: Path | None, fix: str) -> str:
    if not isinstance(value, str) or not value.strip():
        from budget_state.budgets._units import describe_value

        raise ConfigError(f"{key} {describe_value(value)} in {where} is not a text value — {fix}", path=path)
    return value.strip()


def check_url(url: str, where: str, path: Path | None) -> str:
    """``url`` if it is a PostgreSQL URL whose user-info libpq reads as written, and, when it comes
    from a file, one without a password. No message repeats any part of the user-info."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"team_url in {where} is not a postgresql:// URL — {_URL_FIX}", path=path)
    userinfo = _userinfo(url)
    if userinfo is not None and ("@" in userinfo or _BAD_ESCAPE.search(userinfo)):
        raise ConfigError(
            f"the user name or password of team_url in {where} is not percent-encoded (libpq would read part of "
            "it as the host, or refuse it) — write @ as %40, : as %3A, % as %25 and / as %2F in them",
            path=path,
        )
    if path is not None and (parts.password is not None or "password" in parse_qs(parts.query)):
        raise ConfigError(
            f"team_url in {where} holds a password, and that file may be committed — remove it from the URL "
            "and give it in PGPASSWORD or ~/.pgpass (or put the whole URL in CLAUDE_BUDGET_TEAM_URL)",
            path=path,
        )
    return url


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _userinfo(url: str) -> str | None:
    """What stands between ``//`` and the last ``@`` of the authority, raw; None without one."""
    rest = url.split("//", 1)[1] if "//" in url else ""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return authority.rpartition("@")[0] if "@" in authority else None


def redact(text: str, url: str | None) -> str:
    """``text`` with every part of ``url``'s user-info (user name and password, raw and decoded) blanked.

    For any message built from a database or libpq error: they may quote the connection string.
    """
    if not url:
        return text
    userinfo = _userinfo(url)
    if not userinfo:
        return text
    secrets = {userinfo, unquote(userinfo)}
    for whole in list(secrets):
        secrets.update(re.split(r"[:@]", whole))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def team_setting(data: Mapping[str, object], where: str, path: Path | None) -> dict[str, Any]:
    """The team fields of ``Config`` present in ``data`` (a file's top level, or the environment's)."""
    out: dict[str, Any] = {}
    if "team_url" in data:
        out["team_url"] = check_url(_text("team_url", data["team_url"], where, path, _URL_FIX), where, path)
    if "team" in data:
        out["team"] = _text("team", data["team"], where, path, 'write e.g. team = "platform"')
    if "on_team_unreachable" in data:
        value = data["on_team_unreachable"]
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in UNREACHABLE_CHOICES:
            from budget_state.budgets._units import describe_value

            raise ConfigError(
                f"on_team_unreachable {describe_value(value)} in {where} is not a choice — use "
                + " or ".join(UNREACHABLE_CHOICES),
                path=path,
            )
        out["on_team_unreachable"] = text
    return out


def team_name(config: Any) -> str:
    """The team, ``"default"`` when a URL is set without one."""
    return str(config.team or "default")
