"""The files the ledger's state spans, so that an event reads and writes only what it changes.

Beside the ledger (``budget-ledger.toml``), in ``budget-ledger.d/``::

    commands/<name>.json   one command's totals (what schema 2 kept as [commands."/name"]), one JSON object
    sessions/<id>.json     one session's read cursors and links (schema 2's [sessions.<id>])
    minutes/<scope>        one scope's minute buckets, the line _windows writes
    quarters/<scope>       the same per quarter hour

A name is its key with every byte outside ``[A-Za-z0-9_-]`` written ``%XX`` (``/review-pr`` ->
``%2Freview-pr``); a key too long for a file name is cut and ends in ``~<hash>``, its full key on
the file's first line as a comment. The ledger file keeps the rest (overall, open and recent runs,
orchestrations, the team's lease, the plan's marks): small, whatever the history.

Every write happens under the ledger's lock. A change that spans several files is first written
whole to ``journal.json`` (atomically and durably): that write is the commit. Then each file is
replaced, then the journal removed. A writer killed before the commit changed nothing; one killed
after it left a journal that the next transaction replays (each entry is a whole file, so
replaying twice is harmless) and that a reader without the lock reads through.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from .._atomic import sync_folder, write_atomic
from .._errors import LedgerError
from .._private import read_private as read_private  # every read of a state file goes through this name
from ._state import FieldError, Scope, Session, bucket_line

KINDS: Final = ("commands", "sessions", "minutes", "quarters")
_TABLES: Final = frozenset(("commands", "sessions"))  # JSON objects; the others one line of text
JOURNAL: Final = "journal.json"
_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_LONGEST: Final = 120


def folder_of(ledger: Path, /) -> Path:
    """``budget-ledger.toml`` -> ``budget-ledger.d`` beside it."""
    return ledger.with_name(ledger.stem + ".d")


def encode(key: str, /) -> str:
    """A key as a file name (no suffix): safe characters kept, every other byte ``%XX``."""
    out = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")) for c in key)
    if len(out) <= _LONGEST:
        return out
    import hashlib

    return out[:80] + "~" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def decode(name: str, /) -> str | None:
    """The key of a file name :func:`encode` made; None for a cut one (its key is inside) or a stray file."""
    if "~" in name or not name or name.startswith("."):
        return None
    head, *escaped = name.split("%")  # each "%XX" starts a piece: its two hex digits, then safe text
    if not _SAFE.issuperset(head):
        return None
    raw = bytearray(head.encode())
    for piece in escaped:
        hex_digits, rest = piece[:2], piece[2:]
        if len(hex_digits) != 2 or not _HEX.issuperset(hex_digits) or not _SAFE.issuperset(rest):
            return None
        raw.append(int(hex_digits, 16))
        raw += rest.encode()
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


_HEX: Final = frozenset("0123456789abcdefABCDEF")


def _suffix(kind: str) -> str:
    return ".json" if kind in _TABLES else ""


# A part is JSON, not TOML: a status of 200 commands reads 200 of them, and the C JSON parser
# takes ~10 us for what tomllib (pure Python) takes ~170 us. Times are ISO 8601 strings; each
# entry is read into its typed value (_state) once, which validates it.


def _as_time(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class PartError(ValueError):
    """A part file that is not what it should be (names the file)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class Parts(dict):  # type: ignore[type-arg]  # values: a table (dict) or a bucket line (str), by kind
    """One table of the state whose entries live a file each (see the module): a dict that reads an
    entry's file the first time it is asked for, and knows which entries it changed."""

    def __init__(self, folder: Path, kind: str, overlay: dict[str, bytes | None] | None = None) -> None:
        super().__init__()
        self.folder = folder / kind
        self.kind = kind
        self._overlay = overlay or {}  # journal entries not applied yet: relpath -> bytes (None: removed)
        self._names: dict[str, str] | None = None  # key -> file name, from a listing (made when needed)
        self._files: set[str] = set()  # the listing's file names
        self._dir = str(self.folder)
        self._gone: set[str] = set()
        self._was: dict[str, bytes] = {}  # each entry's file as read: what is compared at the write
        self.bad: list[PartError] = []  # entries whose file could not be read as one (left out)
        #: entry file -> its fields of the wrong kind (left out), and the file as it was
        self.problems: dict[str, tuple[list[FieldError], bytes]] = {}

    # --- reading ------------------------------------------------------------------------------

    def _listing(self) -> dict[str, str]:
        if self._names is None:
            names: dict[str, str] = {}
            suffix = _suffix(self.kind)
            try:
                entries = os.listdir(self.folder)
            except FileNotFoundError:
                entries = []
            except OSError as e:
                raise LedgerError(f"cannot list {self.folder}: {e.strerror}", path=self.folder) from None
            for rel in [*entries, *(r.split("/", 1)[1] for r in self._overlay if r.startswith(self.kind + "/"))]:
                if not rel.endswith(suffix) or rel.startswith("."):
                    continue
                stem = rel[: len(rel) - len(suffix)] if suffix else rel
                key = decode(stem)
                if key is None and "~" in stem:
                    key = self._key_inside(rel)
                if key is not None:
                    names[key] = rel
            for rel, data in self._overlay.items():  # removed by a journal not applied yet
                kind, _, name = rel.partition("/")
                if kind == self.kind and data is None:
                    for key in [k for k, n in names.items() if n == name]:
                        del names[key]
            self._names = names
            self._files = set(names.values())
        return self._names

    def _key_inside(self, name: str) -> str | None:
        data = self._bytes(name)
        first = data.split(b"\n", 1)[0] if data else b""
        if not first.startswith(b"# "):
            return None
        try:
            key = json.loads(first[2:])
        except ValueError:
            return None
        return key if isinstance(key, str) else None

    def _bytes(self, name: str) -> bytes | None:
        if self._overlay:
            rel = f"{self.kind}/{name}"
            if rel in self._overlay:
                return self._overlay[rel]
        if self._names is not None and name not in self._files:
            return None  # listed already: no file of that name (no open to find out)
        return read_private(os.path.join(self._dir, name))

    def _load(self, key: str) -> Any:
        """The entry's value from its file; KeyError when it has none."""
        if key in self._gone:
            raise KeyError(key)
        if self._names is not None:  # listed already: the file's name, or none (no open to find out)
            name = self._names.get(key)
            if name is None:
                raise KeyError(key)
        else:
            name = encode(key) + _suffix(self.kind)
        data = self._bytes(name)
        if data is None:
            raise KeyError(key)
        try:
            value = self._parse(data, name)
        except (ValueError, UnicodeDecodeError) as e:  # FieldError too: a field of the wrong kind
            self.bad.append(PartError(self.folder / name, str(e)[:200]))
            raise KeyError(key) from None
        dict.__setitem__(self, key, value)
        self._was[key] = data
        return value

    def _parse(self, data: bytes, name: str) -> Any:
        text = data.decode("utf-8")
        if text.startswith("# "):
            text = text.split("\n", 1)[1] if "\n" in text else ""
        where = f"{self.kind}/{name}"
        if self.kind not in _TABLES:
            return bucket_line(text.strip(), where)
        loaded = json.loads(text)
        problems: list[FieldError] = []
        value = (
            Scope.load(loaded, where, problems) if self.kind == "commands" else Session.load(loaded, where, problems)
        )
        if problems:
            self.problems[name] = (problems, data)
        return value

    # --- the dict, over every entry (read when asked for) -------------------------------------

    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return self._load(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._gone.discard(key)

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError when there is none
        dict.__delitem__(self, key)
        self._gone.add(key)

    def pop(self, key: str, *default: Any) -> Any:
        try:
            value = self[key]
        except KeyError:
            if default:
                return default[0]
            raise
        del self[key]
        return value

    def setdefault(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            self[key] = default
            return default

    def _keys(self) -> list[str]:
        keys = [k for k in dict.keys(self)]
        known = set(keys)
        keys += [k for k in self._listing() if k not in known and k not in self._gone]
        return keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __bool__(self) -> bool:
        return bool(dict.__len__(self)) or any(k not in self._gone for k in self._listing())

    def keys(self) -> list[str]:  # type: ignore[override]
        return self._keys()

    def values(self) -> list[Any]:  # type: ignore[override]
        return [v for _, v in self.items()]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        out = []
        for k in self._keys():
            try:
                out.append((k, self[k]))
            except KeyError:
                continue  # a file that could not be read as one (see bad)
        return out

    def update(self, other: Any = (), /, **kw: Any) -> None:
        for k, v in dict(other, **kw).items():
            self[k] = v

    def clear(self) -> None:
        for k in self._keys():
            self.pop(k, None)

    def copy(self) -> dict[str, Any]:
        return dict(self.items())

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        import copy

        return {k: copy.deepcopy(v, memo) for k, v in self.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and dict(self.items()) == dict(other.items())

    __hash__ = None

    def __repr__(self) -> str:
        return f"<{self.kind} in {self.folder}: {dict.__len__(self)} read>"

    # --- what the write needs -----------------------------------------------------------------

    def loaded(self) -> list[str]:
        """The entries read or set in this transaction (the only ones it can have changed)."""
        return list(dict.keys(self))

    def new_keys(self) -> list[str]:
        """The entries set in this transaction that had no file."""
        listing = self._listing()
        return [k for k in dict.keys(self) if k not in listing]

    def changes(self) -> Iterator[tuple[str, bytes | None]]:
        """``(relpath, bytes)`` of each entry changed since it was read, ``(relpath, None)`` for each removed."""
        for key in dict.keys(self):
            data = encode_part(self.kind, key, dict.__getitem__(self, key))
            if data is not None and data != self._was.get(key):
                yield f"{self.kind}/{encode(key)}{_suffix(self.kind)}", data
        for key in self._gone:
            yield f"{self.kind}/{encode(key)}{_suffix(self.kind)}", None

    def expire(self, *, idle: float, keep: int, now: float) -> None:
        """Remove the entries whose file was last written more than ``idle`` seconds before ``now``,
        then the oldest beyond ``keep`` — by the files' times, without reading them."""
        listing = self._listing()
        written: list[tuple[float, str]] = []
        for key, name in listing.items():
            if dict.__contains__(self, key):
                written.append((now, key))
                continue
            try:
                written.append((os.stat(self.folder / name, follow_symlinks=False).st_mtime, key))
            except OSError:
                continue
        written.sort()
        for n, (when, key) in enumerate(written):
            if now - when > idle or n < len(written) - keep:
                self._gone.add(key)
                if dict.__contains__(self, key):
                    dict.__delitem__(self, key)


def encode_part(kind: str, key: str, value: Any, /) -> bytes | None:
    """An entry's file; None for a value that is not one of its kind (a hand edit's)."""
    long = "~" in encode(key)
    head = ""
    if long:
        head = "# " + json.dumps(key, ensure_ascii=True) + "\n"
    if kind in _TABLES:
        if not isinstance(value, (Scope, Session)):
            return None
        return (head + json.dumps(value.dump(), ensure_ascii=False, default=_as_time) + "\n").encode("utf-8")
    if not isinstance(value, str) or "\n" in value or "'" in value:
        return None
    return (head + value + "\n").encode("utf-8")


def all_entries(kind: str, table: dict[str, Any], folder: Path, /) -> list[tuple[str, bytes | None]]:
    """Every file of ``kind`` for a table given whole (a ledger migrated from one file, or a table
    a reset replaced): each entry written, every other file of the kind removed."""
    out: list[tuple[str, bytes | None]] = []
    names: set[str] = set()
    for key, value in table.items():
        data = encode_part(kind, str(key), value)
        if data is not None:
            name = encode(str(key)) + _suffix(kind)
            names.add(name)
            out.append((f"{kind}/{name}", data))
    try:
        existing = os.listdir(folder / kind)
    except OSError:
        existing = []
    out += [(f"{kind}/{n}", None) for n in existing if n not in names and not n.startswith(".")]
    return out


# --- the journal -------------------------------------------------------------------------------------


def read_journal(folder: Path, /) -> dict[str, bytes | None] | None:
    """The changes a writer committed and may not have applied (None: no journal)."""
    path = folder / JOURNAL
    data = read_private(path, what=f"the ledger journal {path}")
    if data is None:
        return None
    try:
        raw = json.loads(data)
        entries = raw["entries"]
        out: dict[str, bytes | None] = {}
        for rel, text in entries.items():
            _check_rel(rel)
            out[rel] = None if text is None else str(text).encode("utf-8")
        return out
    except (ValueError, KeyError, TypeError, AttributeError):
        # write_atomic makes it whole or absent: an unreadable one is not ours to apply
        raise LedgerError(
            f"the ledger journal {path} cannot be read — move it aside; the ledger is as of the last whole write",
            path=path,
        ) from None


def _check_rel(rel: str) -> None:
    kind, _, name = rel.partition("/")
    if rel == "ledger":
        return
    if kind not in KINDS or not name or "/" in name or name.startswith(".") or name in ("..", "."):
        raise ValueError(f"not a part: {rel}")


def commit(ledger: Path, changes: list[tuple[str, bytes | None]], /) -> None:
    """Apply ``changes`` (``"ledger"`` is the ledger file itself; ``"<kind>/<name>"`` a part) as one:
    several go through the journal (see the module); one is a plain atomic replace."""
    if not changes:
        return
    folder = folder_of(ledger)
    if len(changes) == 1:
        _apply(ledger, folder, changes)
        return
    _make_folders(folder, {rel.partition("/")[0] for rel, _ in changes if rel != "ledger"})
    journal = {"entries": {rel: None if data is None else data.decode("utf-8") for rel, data in changes}}
    write_atomic(folder / JOURNAL, json.dumps(journal, ensure_ascii=False).encode("utf-8"), locked=True)
    _apply(ledger, folder, changes)
    os.unlink(folder / JOURNAL)


def replay(ledger: Path, /) -> bool:
    """Apply a journal a killed writer left (under the lock); whether there was one."""
    folder = folder_of(ledger)
    entries = read_journal(folder)
    if entries is None:
        return False
    _make_folders(folder, {rel.partition("/")[0] for rel in entries if rel != "ledger"})
    _apply(ledger, folder, list(entries.items()))
    os.unlink(folder / JOURNAL)
    return True


def _make_folders(folder: Path, kinds: Iterable[str]) -> None:
    for kind in kinds:
        (folder / kind).mkdir(parents=True, exist_ok=True, mode=0o700)


# A scope's time buckets are what its windows sum, never its totals: their files are replaced
# atomically (a killed writer leaves the old or the new), but not fsynced one by one — a machine
# that loses power may lose the last seconds of a window's usage, never a total or a read cursor.
_CACHED: Final = frozenset(("minutes", "quarters"))


def _apply(ledger: Path, folder: Path, changes: list[tuple[str, bytes | None]]) -> None:
    _make_folders(folder, {rel.partition("/")[0] for rel, data in changes if rel != "ledger" and data is not None})
    synced: set[Path] = set()
    for rel, data in changes:
        path = ledger if rel == "ledger" else folder / rel
        if data is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        durable = rel.partition("/")[0] not in _CACHED
        write_atomic(path, data, locked=True, durable=durable, sync_folder=False)
        if durable:
            synced.add(path.parent)
    for parent in synced:  # each folder once, after its files (the renames in it made durable)
        sync_folder(parent)
