"""Index statements the online engine runs, and statements that must run outside a transaction.

The online engine recognises the CREATE/DROP/REINDEX INDEX statements it must
run on its own connection; the lock each statement takes is ``lockmodes.py``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .identifiers import IDENT, fold, qualified, split_qualified

_QUALIFIED = qualified(2)  # [schema.]name: names read as identifiers.py reads them

_CREATE_INDEX = re.compile(
    rf"^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?P<concurrently>CONCURRENTLY\s+)?"
    rf"(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>{IDENT})?\s*ON\s+(?P<only>ONLY\s+)?(?P<table>{_QUALIFIED})",
    re.IGNORECASE | re.DOTALL)
_DROP_INDEX = re.compile(
    rf"^\s*DROP\s+INDEX\s+(?P<concurrently>CONCURRENTLY\s+)?(?P<ie>IF\s+EXISTS\s+)?(?P<name>{_QUALIFIED})"
    r"\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_REINDEX = re.compile(
    rf"^\s*REINDEX\s+(?:\((?P<options>[^)]*)\)\s*)?(?P<kind>INDEX|TABLE)\s+(?P<concurrently>CONCURRENTLY\s+)?"
    rf"(?P<name>{_QUALIFIED})", re.IGNORECASE | re.DOTALL)
# Statements PostgreSQL refuses inside a transaction block.
_OUTSIDE_TRANSACTION = re.compile(
    r"^(CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b"
    r"|DROP\s+INDEX\s+CONCURRENTLY\b"
    r"|REINDEX\s+(\([^)]*\bCONCURRENTLY\b[^)]*\)|\w+\s+CONCURRENTLY\b)"
    r"|ALTER\s+TABLE\b.*\bDETACH\s+PARTITION\b.*\bCONCURRENTLY\s*$"
    r"|VACUUM\b|CREATE\s+DATABASE\b|DROP\s+DATABASE\b|ALTER\s+SYSTEM\b)",
    re.IGNORECASE | re.DOTALL)


def strip_comments(sql: str) -> str:
    """``sql`` without its comments, cut out where PostgreSQL's own lexer (pglast) finds them.

    The lexer knows quotes, dollar quoting and nested comments, and costs a few
    microseconds where sqlparse's formatter took milliseconds a statement.
    """
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(sql)
    except ParseError:  # not lexable as PostgreSQL (an unterminated quote): the slower, lenient way
        import sqlparse

        return sqlparse.format(sql, strip_comments=True).strip()
    kept, at = [], 0
    for token in tokens:  # offsets in characters, end inclusive
        if token.name in ("SQL_COMMENT", "C_COMMENT"):
            kept.append(sql[at:token.start] + " ")
            at = token.end + 1
    kept.append(sql[at:])
    return "".join(kept).strip()


def split_sql(text: str) -> list[str]:
    """Split a script into statements (sqlparse understands quotes, dollar quoting and comments)."""
    import sqlparse  # loaded here, not at start-up: an apply with nothing to do never splits a file

    statements = []
    for statement in sqlparse.split(text):
        statement = statement.strip()
        if strip_comments(statement).rstrip(";").strip():
            statements.append(statement.rstrip(";").strip())
    return statements


@dataclass(frozen=True)
class IndexStatement:
    """A CREATE/DROP/REINDEX index statement the online engine runs."""

    sql: str
    verb: str  # "create", "drop" or "reindex"
    name: str  # index name, unquoted
    schema: str | None
    table: str | None  # table name for create (unquoted); found from the catalog otherwise
    table_schema: str | None
    concurrently: bool
    source: str = ""  # file it came from, for messages

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def parse_index_statement(sql: str, source: str = "") -> IndexStatement | None:
    """Recognise an index statement; None for anything else."""
    body = strip_comments(sql).rstrip(";").strip()
    if m := _CREATE_INDEX.match(body):
        if not m.group("name"):
            return None  # an unnamed index cannot be repaired or rolled back by name
        table_schema, table = split_qualified(m.group("table"))
        return IndexStatement(sql=body, verb="create", name=fold(m.group("name")),
                              schema=table_schema, table=table, table_schema=table_schema,
                              concurrently=bool(m.group("concurrently")), source=source)
    if m := _DROP_INDEX.match(body):
        if "," in m.group("rest") or "," in m.group("name"):
            return None
        schema, name = split_qualified(m.group("name"))
        return IndexStatement(sql=body, verb="drop", name=name, schema=schema, table=None,
                              table_schema=None, concurrently=bool(m.group("concurrently")), source=source)
    if (m := _REINDEX.match(body)) and m.group("kind").upper() == "INDEX":
        schema, name = split_qualified(m.group("name"))
        concurrently = bool(m.group("concurrently")) or bool(
            re.search(r"\bCONCURRENTLY\b", m.group("options") or "", re.IGNORECASE))
        return IndexStatement(sql=body, verb="reindex", name=name, schema=schema, table=None,
                              table_schema=None, concurrently=concurrently, source=source)
    return None


def retarget(st: IndexStatement, name: str, table: tuple[str, str], *, concurrently: bool,
             only: bool) -> IndexStatement:
    """The same CREATE INDEX under another name, on another table (a partition of the original)."""
    from psycopg import sql

    m = _CREATE_INDEX.match(st.sql)
    assert m is not None and st.verb == "create"
    head = sql.SQL("CREATE {unique}INDEX {concurrently}{ine}{name} ON {only}{table}").format(
        unique=sql.SQL("UNIQUE " if m.group("unique") else ""),
        concurrently=sql.SQL("CONCURRENTLY " if concurrently else ""),
        ine=sql.SQL("IF NOT EXISTS " if m.group("ine") else ""),
        name=sql.Identifier(name), only=sql.SQL("ONLY " if only else ""), table=sql.Identifier(*table))
    return IndexStatement(sql=head.as_string() + st.sql[m.end("table"):], verb="create", name=name,
                          schema=table[0], table=table[1], table_schema=table[0], concurrently=concurrently,
                          source=st.source)


def read_index_file(path: Path) -> IndexStatement:
    from ..core.errors import ConfigError

    statements = [s for s in split_sql(path.read_text()) if parse_index_statement(s)]
    if len(statements) != 1:
        raise ConfigError(f"{path.name} must hold exactly one named CREATE INDEX statement")
    found = parse_index_statement(statements[0], source=path.name)
    assert found is not None
    if found.verb != "create" or not found.concurrently:
        raise ConfigError(f"{path.name}: index files must use CREATE INDEX CONCURRENTLY")
    return found


def must_run_outside_transaction(sql: str) -> bool:
    return bool(_OUTSIDE_TRANSACTION.match(strip_comments(sql)))
