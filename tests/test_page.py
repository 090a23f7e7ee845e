"""`dbtune report --format html`: one self-contained page, its tables' numbers those of the JSON report of the
same run, and, rendered by headless Chromium as a person would see it, every section there."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest

from dbtune.core.output import Output, cell
from dbtune.core.settings import Target
from dbtune.monitoring.report import report
from dbtune.publish import emit, page
from tests.fix_cli import run_cli
from tests.fix_db import Server

WINDOW = (1280, 2000)


@pytest.fixture(scope="module")
def shop(pg_server: Server) -> Iterator[str]:
    """Index scans, an unused and a duplicate index, a bloated table, a slow query and refresh history."""
    dsn = pg_server.create_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int, label text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO items SELECT g, g % 50, repeat('x', 40) || g FROM generate_series(1, 60000) g")
        conn.execute("CREATE INDEX ix_items_label ON items (label)")  # never scanned
        conn.execute("CREATE INDEX ix_items_kind ON items (kind)")
        conn.execute("CREATE INDEX ix_items_kind_label ON items (kind, label)")  # ix_items_kind is its prefix
        conn.execute("DELETE FROM items WHERE id % 2 = 0")  # half the rows dead: bloat
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("ANALYZE items")
        for n in range(5):
            conn.execute("SELECT * FROM items WHERE id = %s", [n + 1])
        conn.execute("SELECT pg_sleep(0.12) AS dbtune_page_probe")
        conn.execute("CREATE MATERIALIZED VIEW kinds AS SELECT kind, count(*) AS n FROM items GROUP BY kind")
        conn.execute("CREATE UNIQUE INDEX kinds_kind ON kinds (kind)")
    for args in (["--setup"], ["--all"], ["--all"], ["--all"]):
        assert run_cli("refresh", *args, "--database-url", dsn).exit_code == 0
    yield dsn
    pg_server.drop_database(dsn)


class Tables(HTMLParser):
    """Each table of the page by its data-section: rows of {key: (text, exact value)}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, tuple[str, str | None]]]] = {}
        self.current: list[dict[str, tuple[str, str | None]]] | None = None
        self.cell: tuple[str, str | None] | None = None
        self.text = ""
        self.tags: set[str] = set()
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if tag == "table":
            self.current = self.tables.setdefault(str(found["data-section"]), [])
        elif tag == "tr" and self.current is not None and self.in_body:
            self.current.append({})
        elif tag == "tbody":
            self.in_body = True
        elif tag == "td":
            self.cell, self.text = (str(found["data-key"]), found.get("data-value")), ""

    def handle_data(self, data: str) -> None:
        if self.cell:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell and self.current is not None:
            self.current[-1][self.cell[0]] = (self.text, self.cell[1])
            self.cell = None
        elif tag == "table":
            self.current, self.in_body = None, False


def test_each_table_of_the_page_shows_the_numbers_of_the_json_report_of_the_same_run(shop: str) -> None:
    target = Target.parse(shop, "test")
    result = report(target)
    html, doc = io.StringIO(), emit.json_form(result.as_dict())
    emit.report(result, target, "html", Output(stdout=html))
    parser = Tables()
    parser.feed(html.getvalue())
    assert "script" in parser.tags and not {"link", "img", "iframe"} & parser.tags  # nothing fetched
    assert "http://" not in html.getvalue().replace("http://www.w3.org/2000/svg", "")
    for section, _, columns in page.TABLES:
        rows = doc["sections"][section]["rows"]
        assert len(parser.tables.get(section, [])) == len(rows), section
        for shown, row in zip(parser.tables.get(section, []), rows, strict=True):
            for column in columns:
                text, exact = shown[column.key]
                if column.numeric and row[column.key] is not None:
                    assert float(exact) == float(row[column.key]), (section, column.key)  # type: ignore[arg-type]
                    assert text == cell(row[column.key], column), (section, column.key)
                elif column.kind == "text":
                    assert text == cell(row[column.key], column), (section, column.key)
    assert len(parser.tables["findings"]) == len(doc["findings"])
    assert [r["what"][0] for r in parser.tables["findings"]] == [
        f["what"] for f in page.ordered_findings(doc["findings"])]
    sections = doc["sections"]
    assert {r["index_name"] for r in sections["unused-indexes"]["rows"]} >= {"ix_items_label"}
    assert {r["redundant_index"] for r in sections["duplicate-indexes"]["rows"]} == {"ix_items_kind"}
    assert [r["table_name"] for r in sections["bloat"]["rows"]] == ["items"]
    refreshes = parser.tables["refreshes"]
    assert [(r["view"][0], r["refreshes"][1], r["outcome"][0]) for r in refreshes] == [
        ("public.kinds", "3", "refreshed")]


def png_size_and_colours(png: bytes) -> tuple[tuple[int, int], int]:
    """The image's size, and how many byte values its pixels use (a blank page uses one or two)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    size = struct.unpack(">II", png[16:24])
    chunks, at = [], 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        if kind == b"IDAT":
            chunks.append(png[at + 8:at + 8 + length])
        at += 12 + length
    return size, len(set(zlib.decompress(b"".join(chunks))))  # type: ignore[return-value]


def chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("needs Debian's chromium package")
    # Without the networking flags Chromium reaches out to the network at start-up.
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'chromium'}", *args], capture_output=True, text=True,
                          timeout=120, check=True)


def test_the_page_renders_in_chromium_with_every_section(shop: str, tmp_path: Path) -> None:
    written = tmp_path / "report.html"
    result = run_cli("report", "--format", "html", "--output", str(written), "--database-url", shop)
    assert result.exit_code == 0 and result.stdout == "", result.output
    shot = tmp_path / "report.png"
    chromium(f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", written.as_uri(), tmp_path=tmp_path)
    size, colours = png_size_and_colours(shot.read_bytes())
    assert size == WINDOW and colours > 32
    dom = chromium("--dump-dom", written.as_uri(), tmp_path=tmp_path).stdout
    for heading in ("Health", "What to fix first", "Index usage", "Unused indexes", "Duplicate indexes",
                    "Table bloat", "Slow queries", "Cache hits", "Materialized view refreshes"):
        assert f">{heading}</h" in dom, heading
    for text in ("ix_items_label", "ix_items_kind_label", "dbtune_page_probe", "public.kinds",
                 "Refresh durations over time", "Index scans, busiest indexes first", "Estimated bloat by table"):
        assert text in dom, text
    assert "<polyline" in dom and "<rect" in dom  # the line and the bars, drawn
