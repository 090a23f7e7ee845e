#!/usr/bin/env bash
# The main job, end to end, on a throwaway embedded PostgreSQL 18:
# schema, data, every migration applied online, status, rollback.
# Run it with `make demo` (which installs dbtune into .venv first).
set -euo pipefail
SCALE="${DEMO_SCALE:-0.1}"
DIR=".dbtune/demo"
OUT=".dbtune"   # the page and the metrics files, kept after the demo

step() { printf '\n==> %s\n' "$*"; }
trap 'dbtune sandbox stop --dir "$DIR" >/dev/null 2>&1 || true' EXIT

step "starting a throwaway PostgreSQL"
DBTUNE_DATABASE_URL="$(dbtune sandbox start --dir "$DIR")"
export DBTUNE_MIGRATIONS=bundled   # dbtune's reference migrations (in a team's project: its own, found as alembic finds them)
export DBTUNE_DATABASE_URL

step "dbtune status"
dbtune status

step "dbtune apply --to 0002   (the reference schema and its extensions)"
dbtune apply --to 0002

step "dbtune seed --scale $SCALE"
dbtune seed --scale "$SCALE"

step "dbtune verify --analyze --save-baseline   (each query's time before any index; the checks fail)"
dbtune verify --analyze --save-baseline "$DIR/before.json" --format json >/dev/null || true
echo "recorded $DIR/before.json"

step "dbtune apply --dry-run   (what would run, and the locks it takes)"
dbtune apply --dry-run | head -n 40

step "dbtune apply --jobs 2   (every index built concurrently, two tables at a time)"
dbtune apply --jobs 2

step "dbtune status"
dbtune status

step "dbtune verify   (each index serves its query)"
dbtune verify

step "dbtune refresh --setup   (once, as the database owner: the refresh history a cron role records into)"
dbtune refresh --setup

step "dbtune refresh   (the summary views: the first refresh populates them, the next runs CONCURRENTLY)"
dbtune refresh
dbtune refresh --jobs 2
dbtune refresh --status

step "dbtune verify --analyze --compare   (before and after, side by side)"
dbtune verify --analyze --compare "$DIR/before.json"

step "a short workload: the dashboard's queries, a few hundred times"
python - <<'PY'
import os, psycopg
with psycopg.connect(os.environ["DBTUNE_DATABASE_URL"], autocommit=True) as conn:
    for n in range(300):
        conn.execute("SELECT count(*) FROM orders WHERE retailer_id = %s AND status = 'PENDING'", [1 + n % 50])
        conn.execute("SELECT * FROM daily_revenue_summary WHERE day >= current_date - 30")
    conn.execute("SELECT sum(total) FROM orders WHERE due_amount > 0")  # no index for this one: a seq scan
PY

step "dbtune report health   (the monitoring views, graded A to F)"
dbtune report health
dbtune report slow-queries --slow-ms 1 --limit 5

step "dbtune report --format html / openmetrics   (a health page to open, metrics for Prometheus' textfile collector)"
dbtune refresh --quiet   # one more point on the page's refresh-durations line
dbtune report --format html --output "$OUT/report.html"
dbtune report --format openmetrics --output "$OUT/dbtune.prom"
dbtune refresh --status --format openmetrics --output "$OUT/dbtune_refresh.prom"
grep -E '^dbtune_report_health|^dbtune_refresh_last_success_age' "$OUT/dbtune.prom" "$OUT/dbtune_refresh.prom" || true
# A screenshot of the page where Chromium is installed: the README's docs/report-page.png is
# this file (DEMO_SCREENSHOT=docs/report-page.png make demo writes it there).
SHOT="${DEMO_SCREENSHOT:-$OUT/report-page.png}"
if command -v chromium >/dev/null; then
    PROFILE="$(mktemp -d)"
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$PROFILE" --window-size=1280,2000 \
        --screenshot="$SHOT" "file://$PWD/$OUT/report.html" >/dev/null 2>&1 \
        && echo "screenshot: $SHOT"
    rm -rf "$PROFILE"
fi

step "dbtune rollback --to base"
dbtune rollback --to base

step "dbtune status"
dbtune status
echo
echo "demo finished: the throwaway server is stopped and removed"
echo "the health page: $OUT/report.html (open it in a browser); metrics: $OUT/dbtune.prom and $OUT/dbtune_refresh.prom"
