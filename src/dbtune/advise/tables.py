"""What advise reads about each table from the target's catalog: columns, indexes, statistics, writes.

Every query here is a plain read that the table's owner may run (pg_stats shows the columns a
role may read); nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True)
class Existing:
    """An index the table has: its key columns (None for an expression), method, predicate."""

    name: str
    method: str
    keys: tuple[str | None, ...]
    include: tuple[str, ...]
    opclasses: tuple[str, ...]
    predicate: str | None
    definition: str = ""


@dataclass(frozen=True)
class Stats:
    null_frac: float
    n_distinct: float
    common: tuple[str, ...]  # most common values, most common first
    freqs: tuple[float, ...]
    bounds: tuple[str, ...]  # histogram bounds


@dataclass
class Table:
    oid: int
    schema: str
    name: str
    rows: float
    bytes: int
    columns: dict[str, tuple[str, bool]]  # name -> (type, a built-in type)
    indexes: list[Existing] = field(default_factory=list)
    stats: dict[str, Stats] = field(default_factory=dict)
    writes_per_hour: float | None = None

    @property
    def qualified(self) -> str:
        from psycopg import sql

        return sql.Identifier(self.schema, self.name).as_string()

    def few_values(self, column: str, most: int = 20) -> bool:
        """A column of at most ``most`` distinct values (pg_stats' n_distinct; negative is a share of the rows)."""
        st = self.stats.get(column)
        if st is None:
            return False
        distinct = st.n_distinct if st.n_distinct > 0 else -st.n_distinct * max(self.rows, 1.0)
        return distinct <= most

    def share(self, column: str, op: str, values: tuple[str, ...]) -> float | None:
        """The share of the rows a constant condition selects, from pg_stats; None when unknown."""
        st = self.stats.get(column)
        if st is None:
            return None
        common = dict(zip(st.common, st.freqs, strict=False))
        plain = tuple(_unquote(v) for v in values)
        if op == "true":
            return common.get("t", 0.0)
        if op == "false":
            return common.get("f", 0.0)
        if op == "is null":
            return st.null_frac
        rest = max(0.0, 1.0 - st.null_frac - sum(st.freqs))
        distinct = st.n_distinct if st.n_distinct > 0 else -st.n_distinct * max(self.rows, 1.0)
        other = rest / max(distinct - len(st.common), 1.0)
        picked = sum(common.get(v, other) for v in plain)
        return picked if op in ("=", "in") else max(0.0, 1.0 - st.null_frac - picked)


def _unquote(literal: str) -> str:
    text = literal.split("::")[0].strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    return text.lower() if text.lower() in ("true", "false") else text


def read(conn: psycopg.Connection[Any], relation: tuple[str | None, str]) -> Table | None:
    """The table ``relation`` names (as PostgreSQL resolves it), or None for a view, a missing name
    or the system catalog (monitoring's own queries are in pg_stat_statements too)."""
    from psycopg import sql

    name = sql.Identifier(*(p for p in relation if p is not None)).as_string(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT c.oid, n.nspname, c.relname, greatest(c.reltuples, 0) AS rows, pg_table_size(c.oid) AS bytes "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')", [name]).fetchone()
        if row is None:
            return None
        table = Table(row["oid"], row["nspname"], row["relname"], float(row["rows"]), int(row["bytes"]), {})
        for col in cur.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, "
                "t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype = 'b' AS builtin "
                "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", [table.oid]):
            table.columns[col["attname"]] = (col["type"], col["builtin"])
        table.indexes = [Existing(r["name"], r["method"], tuple(r["keys"][:r["nkeys"]]),
                                  tuple(k for k in r["keys"][r["nkeys"]:] if k), tuple(r["opclasses"]),
                                  r["predicate"], r["definition"])
                         for r in cur.execute(_INDEXES, [table.oid])]
        for st in cur.execute(
                "SELECT attname, null_frac, n_distinct, most_common_vals::text::text[] AS common, "
                "most_common_freqs AS freqs, histogram_bounds::text::text[] AS bounds FROM pg_stats "
                "WHERE schemaname = %s AND tablename = %s AND NOT inherited", [table.schema, table.name]):
            table.stats[st["attname"]] = Stats(st["null_frac"] or 0.0, st["n_distinct"] or 0.0,
                                               tuple(st["common"] or ()), tuple(st["freqs"] or ()),
                                               tuple(st["bounds"] or ()))
        table.writes_per_hour = _writes(cur, table.oid)
    return table


_INDEXES = """
SELECT i.relname AS name, am.amname AS method, x.indnkeyatts AS nkeys,
       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS keys,
       array(SELECT o.opcname FROM unnest(x.indclass) WITH ORDINALITY k(oid, n)
             JOIN pg_opclass o ON o.oid = k.oid ORDER BY k.n) AS opclasses,
       pg_get_expr(x.indpred, x.indrelid) AS predicate, pg_get_indexdef(x.indexrelid) AS definition
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam
WHERE x.indrelid = %s AND x.indisvalid ORDER BY i.relname
"""


def _writes(cur: psycopg.Cursor[Any], oid: int) -> float | None:
    """Rows inserted, updated and deleted per hour since the statistics were last reset."""
    row = cur.execute(
        "SELECT s.n_tup_ins + s.n_tup_upd + s.n_tup_del AS writes, "
        "extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time())) / 3600 AS hours "
        "FROM pg_stat_user_tables s, pg_stat_database d "
        "WHERE s.relid = %s AND d.datname = current_database()", [oid]).fetchone()
    if row is None or not row["hours"]:
        return None
    return float(row["writes"]) / max(float(row["hours"]), 1 / 60)
