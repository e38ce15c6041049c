#!/usr/bin/env bash
# Seed 001 at the size of a real session store: select (redis.delete with dry_run) the
# sessions of one organisation among N JSON sessions, flow beside a plain Python client
# (redis-py with hiredis: SCAN pages of 1 000, one pipelined GET per page, json.loads) in one
# run on the same data,
# with the peak memory of flow's run, then one purge of the same selection.
#
#   bench/sessions.sh                SIZES="100000 1000000", RUNS=3
#   SIZES=100000 RUNS=5 bench/sessions.sh
#
# Starts its own redis-server on 127.0.0.1:$FLOW_BENCH_SESSIONS_PORT (default 6391) and a
# Python venv with the `redis` package in $WORK/venv. Only 127.0.0.1 is contacted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${SIZES:-100000 1000000}"
RUNS="${RUNS:-3}"
PORT="${FLOW_BENCH_SESSIONS_PORT:-6391}"
WORK="${FLOW_BENCH_SESSIONS_WORK:-/tmp/flow-bench-sessions}"
RESULTS="${FLOW_BENCH_RESULTS:-/tmp/flow-bench-results}"
log() { echo "== $*" >&2; }
mkdir -p "$WORK" "$RESULTS"

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v redis-server >/dev/null || missing+=(redis-server)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# redis-py with hiredis (its C reply parser): the fastest plain Python client, the floor.
if [ ! -x "$WORK/venv/bin/python" ] || ! "$WORK/venv/bin/python" -c 'import redis, hiredis' 2>/dev/null; then
  log "python venv with redis and hiredis in $WORK/venv"
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q redis hiredis
fi
PY="$WORK/venv/bin/python"

log "building flow (release)"
(cd "$ROOT" && cargo build --release --quiet --no-default-features)
FLOW="${CARGO_TARGET_DIR:-$ROOT/target}/release/flow"

log "redis-server on 127.0.0.1:$PORT"
mkdir -p "$WORK/redis"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" \
  --daemonize yes --pidfile "$WORK/redis/redis.pid" --logfile "$WORK/redis/redis.log"
trap 'kill "$(cat "$WORK/redis/redis.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

"$PY" "$ROOT/bench/sessions.py" playbooks --out "$WORK" --port "$PORT" >/dev/null
STATE="$WORK/state"
for n in $SIZES; do
  log "loading $n sessions"
  redis-cli -p "$PORT" flushall >/dev/null
  "$PY" "$ROOT/bench/sessions.py" load --port "$PORT" --count "$n" >/dev/null
  floor_count=$("$PY" "$ROOT/bench/sessions.py" floor --port "$PORT")
  flow_count=$("$FLOW" --state-dir "$STATE" --output json plan "$WORK/sessions-select.yaml" |
    "$PY" -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e.get("event") == "plan_step": print(e["summary"].split()[1])')
  log "both select $floor_count of $n (flow: $flow_count)"
  [ "$floor_count" = "$flow_count" ] || { log "the counts differ"; exit 1; }
  hyperfine -N --style basic --warmup 1 --runs "$RUNS" \
    --export-json "$RESULTS/sessions-select-$n.json" \
    -n "python-floor" "$PY $ROOT/bench/sessions.py floor --port $PORT" \
    -n "flow-plan" "$FLOW --state-dir $STATE -q plan $WORK/sessions-select.yaml"
  /usr/bin/time -f '%M' -o "$RESULTS/sessions-rss-$n.txt" \
    "$FLOW" --state-dir "$STATE" -q plan "$WORK/sessions-select.yaml" >/dev/null
  began=$(date +%s.%N)
  "$FLOW" --state-dir "$STATE" -q apply --yes "$WORK/sessions-purge.yaml" >/dev/null
  ended=$(date +%s.%N)
  echo "$began $ended $(redis-cli -p "$PORT" dbsize)" >"$RESULTS/sessions-purge-$n.txt"
done

"$PY" - "$RESULTS" $SIZES <<'EOF'
import json, sys
results, sizes = sys.argv[1], sys.argv[2:]
rows, base = [], None
for n in sizes:
    runs = {r["command"]: r for r in json.load(open(f"{results}/sessions-select-{n}.json"))["results"]}
    floor, flow = runs["python-floor"], runs["flow-plan"]
    rss = int(open(f"{results}/sessions-rss-{n}.txt").read().split()[-1]) / 1024
    began, ended, left = open(f"{results}/sessions-purge-{n}.txt").read().split()
    base = base or (int(n), flow["median"])
    rows.append((n, floor["median"], flow["median"], flow["median"] / floor["median"],
                 flow["median"] / base[1] / (int(n) / base[0]), rss, float(ended) - float(began)))
print(f"{'sessions':>9} {'python s':>9} {'flow s':>8} {'flow/python':>11} {'scaling':>8} {'flow RSS':>9} {'purge s':>8}")
for n, py, fl, ratio, scale, rss, purge in rows:
    print(f"{int(n):>9} {py:>9.2f} {fl:>8.2f} {ratio:>11.2f} {scale:>8.2f} {rss:>7.0f} MiB {purge:>8.2f}")
print("(medians; scaling = time per key relative to the smallest size: 1.00 is linear)")
EOF
