"""The one writer: progress on a terminal and off it, quiet mode, streams."""

from __future__ import annotations

import io

from dbtune.core.output import Output


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_shows_every_live_build_on_one_redrawn_line() -> None:
    out = Output(stdout=Terminal(), stderr=io.StringIO())
    out.progress("a", "a: 10%")
    out.progress("b", "b: 50%")
    out.info("a message")
    out.progress("a", "a: built", final=True)
    screen = out.stdout.getvalue()
    assert "\r\033[Ka: 10% | b: 50%" in screen
    # A message clears the bar, prints on its own line, and the bar comes back under it.
    assert "\r\033[Ka message\n\r\033[Ka: 10% | b: 50%" in screen
    assert screen.endswith("\r\033[Ka: built\n\r\033[Kb: 50%")


def test_off_a_terminal_progress_is_plain_lines_at_an_interval() -> None:
    out = Output(stdout=io.StringIO(), stderr=io.StringIO(), log_interval=3600)
    out.progress("a", "a: 10%")
    out.progress("a", "a: 20%")  # within the interval: not printed
    out.progress("a", "a: built", final=True)
    assert out.stdout.getvalue() == "a: 10%\na: built\n"
    assert "\r" not in out.stdout.getvalue()


def test_quiet_keeps_warnings_and_results() -> None:
    out = Output(stdout=io.StringIO(), stderr=io.StringIO(), quiet=True)
    out.info("chatter")
    out.progress("a", "a: 10%")
    out.result("the answer")
    out.warn("careful")
    assert out.stdout.getvalue() == "the answer\n"
    assert out.stderr.getvalue() == "warning: careful\n"


def test_report_tables_fit_120_columns_with_units_and_right_aligned_numbers() -> None:
    from dbtune.core.output import Column, render_grid

    rows = [{"query": "SELECT " + "x, " * 200 + "1\n  FROM t", "size": 123456789, "mean": 1234.5, "n": 7},
            {"query": "SELECT 1", "size": 10, "mean": 0.25, "n": 12345}]
    columns = [Column("query", "query", "sql"), Column("size", "size", "bytes"), Column("mean", "mean", "ms"),
               Column("n", "calls", "int")]
    lines = render_grid(rows, columns).splitlines()
    assert max(len(line) for line in lines) <= 120
    assert "…" in lines[2] and "\n" not in lines[2]  # shortened, never wrapped
    assert lines[2].endswith("117.7 MB  1,234.5 ms        7") and lines[3].endswith("10 B    0.250 ms   12,345")
    assert len(lines[2]) == len(lines[3])  # numbers right-aligned: both rows end in the same column
    assert render_grid(rows, columns, "csv").splitlines()[0] == "query,size,mean,calls"
    assert render_grid(rows, columns, "markdown").startswith("| query")


def test_a_table_shown_whole_keeps_long_values_and_pairs_have_no_header() -> None:
    """status and config diff: a URL or a path is never shortened; name/value pairs print without a header."""
    from dbtune.core.output import Column, render_grid

    long = "postgresql://dba:***@db1.internal:5432/shop  (from " + "x" * 150 + ")"
    pairs = render_grid([{"k": "database", "v": long}, {"k": "head", "v": "0009"}],
                        [Column("k", ""), Column("v", "")], width=None).splitlines()
    assert pairs[0] == pairs[-1] == "-" * 8 + "  " + "-" * len(long)  # rules above and below, no header line
    assert pairs[1] == f"database  {long}" and pairs[2].startswith("head      0009")
    headed = render_grid([{"k": "a", "v": long}], [Column("k", "name"), Column("v", "value")], width=None)
    assert headed.splitlines()[0].startswith("name    value") and long in headed


def test_a_table_with_no_rows_is_its_header_alone() -> None:
    """advise with nothing to advise, report with no slow query: the header prints, on every tabulate we allow."""
    from dbtune.core.output import Column, render_grid

    columns = [Column("index", "index"), Column("gain", "gain", "pct")]
    assert render_grid([], columns).splitlines()[0].split() == ["index", "gain"]
    assert render_grid([], columns, "markdown").startswith("| index")


def test_comments_are_cut_where_postgresql_finds_them() -> None:
    from dbtune.sqltext.statements import strip_comments

    text = ("-- verify: SELECT 1 -- not code\nCREATE INDEX CONCURRENTLY ix ON t (a) /* a /* nested */ comment */ "
            "WHERE note <> '--kept' AND name = 'é' AND body = $$/* kept */$$; -- tail")
    assert strip_comments(text) == ("CREATE INDEX CONCURRENTLY ix ON t (a)   WHERE note <> '--kept' AND "
                                    "name = 'é' AND body = $$/* kept */$$;")
