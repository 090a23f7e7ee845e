"""Identifiers as PostgreSQL's scanner reads them: which characters make a name, and how it is stored.

One rule for every piece of dbtune that reads a name out of SQL text (index
statements, check files), taken from PostgreSQL's lexer (``src/backend/parser/scan.l``)
and ``downcase_identifier`` in ``src/backend/parser/scansup.c``:

- an unquoted name starts with an ASCII letter, ``_`` or any non-ASCII character,
  and goes on with those, ASCII digits and ``$``;
- only its ASCII letters are folded to lower case (in a multi-byte database
  encoding, UTF-8 included), so ``Índice`` is stored as ``Índice``, not ``índice``
  as ``str.lower()`` would have it;
- a quoted name is kept as written, ``""`` standing for ``"``;
- either is truncated to NAMEDATALEN - 1 bytes, on a character boundary.
"""

from __future__ import annotations

import re

NAMEDATALEN = 64

# scan.l's ident_start and ident_cont: [A-Za-z\200-\377_] and [A-Za-z\200-\377_0-9\$], where
# \200-\377 is every byte of a multi-byte character, i.e. any non-ASCII character.  Written as
# "no ASCII character but those": a class spanning the non-ASCII range costs about 0.1 s to compile
# under re.IGNORECASE (every character's case variants), at every start-up.
_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"  # A-Z, _, a-z, or not ASCII
_CONTINUE = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # and $, 0-9
IDENT = rf'(?:"(?:[^"]|"")+"|{_START}{_CONTINUE}*)'


def qualified(most: int) -> str:
    """A pattern for a dotted name of one to ``most`` identifiers (``schema.table``: 2)."""
    return rf"{IDENT}(?:\s*\.\s*{IDENT}){{0,{most - 1}}}"


def fold(ident: str) -> str:
    """An identifier as PostgreSQL stores it: quoted kept as written, unquoted folded; both truncated."""
    ident = ident.strip()
    if ident.startswith('"'):
        name = ident[1:-1].replace('""', '"')
    else:
        name = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in ident)
    return name.encode()[:NAMEDATALEN - 1].decode(errors="ignore")


def split_identifiers(text: str) -> list[str] | None:
    """``a."B".c`` -> ``["a", "B", "c"]``, each part folded; None when ``text`` is not a dotted name."""
    parts: list[str] = []
    rest = text.strip()
    while True:
        match = re.match(IDENT, rest)
        if match is None:
            return None
        parts.append(fold(match.group(0)))
        rest = rest[match.end():].lstrip()
        if not rest:
            return parts
        if not rest.startswith("."):
            return None
        rest = rest[1:].lstrip()


def split_qualified(name: str) -> tuple[str | None, str]:
    """``schema.name`` or ``name`` (as matched by ``qualified(2)``) -> (schema or None, name), folded."""
    parts = split_identifiers(name)
    assert parts, name  # callers pass only text ``qualified(2)`` matched
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
