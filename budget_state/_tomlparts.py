"""A TOML document written and parsed a part at a time, so that what did not change costs nothing.

The ledger is rewritten by every hook event, and tomli_w serialises ~6 KB per ms: a ledger of 20
sessions and 30 runs takes 3-4 ms to write, and tomllib 10 ms to parse back. One event changes a
session or two, a run and the totals; the rest is the text it was last time. So the document is
cut where tomli_w's own output has seams:

- the top-level keys that are not tables (one part);
- each table of a top-level table that holds only tables (``[sessions.<id>]``, ``[commands."/x"]``);
- each table of a top-level array of tables (``[[runs]]``);
- any other top-level table, whole.

Each part is ``tomli_w.dumps`` of that part alone, and the document is the parts joined as tomli_w
joins tables (a blank line between them): byte for byte ``tomli_w.dumps`` of the whole (a test
holds the two equal). Parsing the parts one by one and putting them together gives what tomllib
gives for the whole document, in the same order (a test holds that too).

Parts written before are looked up by ``repr`` of their value (exact for TOML's types, and ~30x
cheaper than serialising), parts parsed before by their text. A miss costs what it costs today.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._toml import loads


class Part(NamedTuple):
    """One part of the document: where its value goes, and its text.

    ``kind``: ``"literals"`` (top-level keys that are not tables; ``key`` is ``""``), ``"table"``
    (``key`` whole), ``"member"`` (``key``'s table ``member``) or ``"element"`` (a table of the
    array of tables ``key``). ``memo``: what the text is looked up by when written again.
    """

    kind: str
    key: str
    member: str
    text: str
    memo: str


def dump(data: Mapping[str, Any], known: Mapping[str, str], /) -> list[Part]:
    """``data`` as parts (see the module); a part whose ``memo`` is in ``known`` is not serialised."""
    import tomli_w

    def part(kind: str, key: str, member: str, value: Any, doc: Mapping[str, Any]) -> Part:
        memo = repr((kind, key, member, value))  # a tuple's repr: no two places share one
        text = known.get(memo)
        if text is None:
            text = tomli_w.dumps(doc)
        return Part(kind, key, member, text, memo)

    literals: dict[str, Any] = {}
    tables: list[Part] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            if value and all(isinstance(v, Mapping) for v in value.values()):
                tables.extend(part("member", key, m, v, {key: {m: v}}) for m, v in value.items())
            else:
                tables.append(part("table", key, "", value, {key: value}))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
            elements = [part("element", key, "", v, {key: [v]}) for v in value]
            tables_of_it = [e.text.startswith("[[") for e in elements]
            if all(tables_of_it):
                tables.extend(elements)
            elif any(tables_of_it):  # tomli_w writes them all as tables, some of which fit on a line alone
                tables.append(part("table", key, "", value, {key: value}))
            else:  # every one fits on a line: an inline array, among the literals
                literals[key] = value
        else:
            literals[key] = value
    if not literals:
        return tables
    return [part("literals", "", "", literals, literals), *tables]


def join(parts: list[Part], /) -> str:
    """The document: tomli_w puts a blank line before each table that follows anything."""
    return "\n".join(p.text for p in parts)


def memo(parts: list[Part], /) -> dict[str, str]:
    """What :func:`dump` looks written parts up in next time (this document's parts only)."""
    return {p.memo: p.text for p in parts}


def load(parts: list[Part], known: Mapping[str, dict[str, Any]], /) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The document :func:`join` makes of ``parts``, parsed: (data, what each part's text parsed to).

    ``known``: texts parsed before. Its values are put into the result as they are: pass ones no
    one else holds. :raises ValueError: a part is not TOML.
    """
    data: dict[str, Any] = {}
    parsed: dict[str, dict[str, Any]] = {}
    for p in parts:
        # Two parts of the same text (a hand edit can repeat a run) must not share one value.
        doc = None if p.text in parsed else known.get(p.text)
        if doc is None:
            doc = loads(p.text)
        parsed[p.text] = doc
        if p.kind == "literals":
            data.update(doc)
        elif p.kind == "table":
            data[p.key] = doc[p.key]
        elif p.kind == "member":
            data.setdefault(p.key, {})[p.member] = doc[p.key][p.member]
        else:
            data.setdefault(p.key, []).append(doc[p.key][0])
    return data, parsed
