#!/usr/bin/env bash
# Load-tests examples/http_service with wrk on loopback, bounded in time:
# single-event POSTs, 100-event batch POSTs and strong-consistency GETs
# against a durable log (each batch fsynced before it is acknowledged).
# Prints requests/s, events/s and p50/p99 latency for each.
#
#   bash scripts/load.sh [SECONDS per scenario, default 10] [CONNECTIONS, default 64]
#
# Installs wrk (Debian's package) if it is missing. Client and server share
# the machine, so the numbers are for both together.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-64}"
port="${RWLOG_LOAD_PORT:-3917}"
base="http://127.0.0.1:$port"

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --features metrics --example http_service
dir=$(mktemp -d)
log="$dir.log"
target/release/examples/http_service "$dir" --listen "127.0.0.1:$port" 2>"$log" &
server=$!
cleanup() { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$dir" "$log"; }
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf "$base/health" >/dev/null && break
  sleep 0.1
done
curl -sf "$base/health" >/dev/null || { echo "the service did not start:" >&2; cat "$log" >&2; exit 1; }

# run NAME LUA EVENTS_PER_REQUEST: one wrk run, then a summary line.
run() {
  local name=$1 script=$2 per=$3 out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency -s "scripts/load/$script" "$base")
  echo "$out" >&2
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  printf '%-22s %12s req/s %14s events/s   p50 %-9s p99 %-9s non-2xx %s\n' \
    "$name" "$rps" "$(awk -v r="$rps" -v p="$per" 'BEGIN {printf "%.0f", r * p}')" \
    "$p50" "$p99" "${errors:-0}"
}

{
  echo "machine: $(nproc) cores, $(uname -sr); wrk -t2 -c$conns -d${secs}s; client and server on one machine"
  run "single-event POST" post_one.lua 1
  run "100-event batch POST" post_batch.lua 100
  run "strong GET (query)" get_strong.lua 0
}
curl -sf "$base/metrics" | grep -E '^rwlog_(events_appended_total|batches_total|batch_events_(sum|count)) ' >&2 || true
