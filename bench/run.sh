#!/usr/bin/env bash
# flow beside Ansible, in one run on one machine: the peer benchmark
# (../shared/bench/ansible/run.sh) first, leaving its servers up, then flow on the same
# workloads under the same hyperfine settings, writing flow-<workload>.json next to
# ansible-<workload>.json so that summarize.py prints both with the ratio.
#
#   bench/run.sh           NS="10 100 500", RUNS=5 (~45 min: Ansible's local-500 alone takes ~20)
#   bench/run.sh --quick   NS="10 100", RUNS=3 (a few minutes)
#
# Knobs: the peer's (NS, RUNS, WARMUP, REDIS_TASKS, ONLY, FLOW_BENCH_*), plus
# FLOW_BENCH_PEER (the peer's folder) and FLOW_BENCH_FLOW_WORK (flow's generated playbooks).
# Only 127.0.0.1 is ever contacted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER="${FLOW_BENCH_PEER:-$ROOT/../shared/bench/ansible}"
if [ "${1:-}" = --quick ]; then
  export NS="${NS:-10 100}" RUNS="${RUNS:-3}"
fi
export NS="${NS:-10 100 500}" RUNS="${RUNS:-5}" WARMUP="${WARMUP:-1}" REDIS_TASKS="${REDIS_TASKS:-100}"
# `limits` measures the floors (process spawn, ssh round trip, redis round trip).
export ONLY="${ONLY:-version debug local ssh redis limits}"
export HOSTS="${HOSTS:-10}" TASKS="${TASKS:-10}"
want() { [[ " $ONLY " == *" $1 "* ]]; }
export FLOW_BENCH_RESULTS="${FLOW_BENCH_RESULTS:-/tmp/flow-bench-results}"
export FLOW_BENCH_REDIS_PORT="${FLOW_BENCH_REDIS_PORT:-6390}"
export FLOW_BENCH_REDIS_STATE="${FLOW_BENCH_REDIS_STATE:-/tmp/flow-bench-redis}"
export FLOW_BENCH_SSH_STATE="${FLOW_BENCH_SSH_STATE:-/tmp/flow-bench-ssh}"
WORK="${FLOW_BENCH_FLOW_WORK:-/tmp/flow-bench-flow}"
RESULTS="$FLOW_BENCH_RESULTS"
log() { echo "== $*" >&2; }

# Tools, from Debian's packages when missing (root, as the peer benchmark expects).
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "building flow (release)"
(cd "$ROOT" && cargo build --release --quiet)
FLOW="${CARGO_TARGET_DIR:-$ROOT/target}/release/flow"

stop_servers() {
  set +e
  if [ -f "$FLOW_BENCH_REDIS_STATE/redis.pid" ]; then
    kill "$(cat "$FLOW_BENCH_REDIS_STATE/redis.pid")" 2>/dev/null && rm -f "$FLOW_BENCH_REDIS_STATE/redis.pid"
  fi
  [ -x "$PEER/sshd/teardown.sh" ] && "$PEER/sshd/teardown.sh" "$FLOW_BENCH_SSH_STATE" >/dev/null 2>&1
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

log "the peer: Ansible (servers kept for flow)"
rm -f "$RESULTS"/flow-*.json
KEEP_SERVERS=1 "$PEER/run.sh"

log "flow on the same workloads"
# shellcheck disable=SC2086  # NS is a word list on purpose
python3 "$ROOT/bench/gen.py" --out "$WORK" --ns $NS --redis-tasks "$REDIS_TASKS" --redis-port "$FLOW_BENCH_REDIS_PORT" \
  --hosts "$HOSTS" --tasks "$TASKS" --ssh-state "$FLOW_BENCH_SSH_STATE" --ssh-port "${FLOW_BENCH_SSH_PORT:-2222}" >/dev/null
STATE="$WORK/state"
bench() { # name command
  local name=$1; shift
  log "flow-$name"
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$RESULTS/flow-$name.json" -n "$name" "$@"
}
q() { printf '%q' "$1"; }
want version && bench version "$(q "$FLOW") --version"
for n in $NS; do
  want debug && bench "debug-$n" "$(q "$FLOW") --state-dir $(q "$STATE") apply $(q "$WORK/debug-$n.yaml")"
  want local && bench "local-$n" "$(q "$FLOW") --state-dir $(q "$STATE") apply $(q "$WORK/local-$n.yaml")"
done
if want ssh; then
  # flow opens its connections per run and closes them at its end, so both of the peer's
  # variants are the same run for flow: a cold one (H fresh handshakes).
  fanout="$(q "$FLOW") --state-dir $(q "$STATE") apply $(q "$WORK/ssh-fanout-${HOSTS}x${TASKS}.yaml")"
  bench "ssh-fanout-${HOSTS}x${TASKS}-cold" "$fanout"
  bench "ssh-fanout-${HOSTS}x${TASKS}" "$fanout"
fi
want redis && bench "redis-$REDIS_TASKS" "$(q "$FLOW") --state-dir $(q "$STATE") apply $(q "$WORK/redis-$REDIS_TASKS.yaml")"
for playbook in "$ROOT"/playbooks/*/*.yaml; do
  name="validate-$(basename "$(dirname "$playbook")")-$(basename "$playbook" .yaml)"
  bench "$name" "$(q "$FLOW") validate $(q "$playbook")"
done
/usr/bin/time -f '%M' -o "$RESULTS/flow-memory-debug-10000.txt" \
  "$FLOW" --state-dir "$STATE" -q apply "$WORK/debug-10000.yaml" >/dev/null

echo
python3 "$PEER/summarize.py" "$RESULTS"
python3 "$ROOT/bench/report.py" "$RESULTS"
