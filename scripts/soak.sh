#!/usr/bin/env bash
# Soak: every service under a mixed, bounded load for a long time, with the server's memory,
# descriptors and connections sampled every second. Passes when no load tool reported an
# error, the server is still alive, and after the load connections return to zero and RSS
# returns to its baseline within ±10%.
#
#   scripts/soak.sh                 # 10 minutes of load (SOAK_SECS=600)
#   SOAK_SECS=60 scripts/soak.sh    # a short run
#
# Phases, each marked in the CSV:
#   warmup  the same mixed load for WARMUP_SECS (default SOAK_SECS/10, 25..60 s, so at least
#           two rounds of slowloris are cut off by the 10 s head timeout): allocator arenas,
#           the slab, the timer heap and the kv keyspace reach their working size
#   settle  load stopped; wait for connections to close; RSS then is the BASELINE
#   load    the mixed load for SOAK_SECS
#   drain   load stopped; wait (up to DRAIN_SECS, 60) for connections to return to zero;
#           RSS then is compared with the baseline
#
# The load: wrk on HTTP GET / (20 connections), redis-benchmark on kv (20 connections,
# pipelines of 8, SET/GET/INCR/MSET/PING), and scripts/soak_load.py for echo (20
# connections, random sizes, every byte checked), chat (20 members), UDP echo, and 1,000
# slowloris connections dribbling HTTP heads (cut off by the 10 s head timeout, reconnecting).
#
# Output in SOAK_OUT (default target/soak/): samples.csv (elapsed_s, phase, rss_kib, fds,
# conns_open), the load tools' logs, and summary.txt. Only 127.0.0.1 is used, on ports
# SOAK_PORT (default 22345) to SOAK_PORT+3, so a `reactor serve` on the defaults is not
# disturbed. SOAK_SERVER_ARGS adds flags to `reactor serve` (e.g. "--idle-timeout 0").
# Missing wrk / redis-benchmark / curl / python3 are installed with apt-get when root.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${SOAK_SECS:-600}"
warmup="${WARMUP_SECS:-$(( secs / 10 < 25 ? 25 : (secs / 10 > 60 ? 60 : secs / 10) ))}"
drain_secs="${DRAIN_SECS:-60}"
port="${SOAK_PORT:-22345}"
out="${SOAK_OUT:-target/soak}"
echo_addr="127.0.0.1:$port"
chat_addr="127.0.0.1:$((port + 1))"
http_addr="127.0.0.1:$((port + 2))"
kv_port=$((port + 3))

mkdir -p "$out"
rm -f "$out"/*.log "$out/samples.csv" "$out/summary.txt"

# ─── tools ─────────────────────────────────────────────────────────────────────────────────
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "soak: missing ${need[*]} and not root to install them" >&2
    exit 2
  fi
fi

echo "== building the release binary"
cargo build --release --quiet
bin=target/release/reactor

# 1,000 slowloris connections and the rest need more than the usual 1,024 descriptors, in
# the server and in the load generator alike.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ─── the server ────────────────────────────────────────────────────────────────────────────
"$bin" serve --echo "$echo_addr" --udp-echo "$echo_addr" --chat "$chat_addr" \
  --http "$http_addr" --kv "127.0.0.1:$kv_port" ${SOAK_SERVER_ARGS:-} >"$out/server.out" 2>"$out/server.log" &
server=$!
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
  [ "$(grep -c listening "$out/server.out" 2>/dev/null)" -ge 5 ] && break
  sleep 0.1
done
grep -q "udp-echo" "$out/server.out" || { echo "soak: the server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
echo "== server $server listening:"
sed 's/^/   /' "$out/server.out"

# ─── sampling ──────────────────────────────────────────────────────────────────────────────
phase_file="$out/phase"
echo warmup >"$phase_file"
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
fds() { ls "/proc/$server/fd" | wc -l; }
# conns_open from /stats, less the /stats connection itself.
conns() {
  local n
  n=$(curl -s --max-time 2 "http://$http_addr/stats" | grep -o '"conns_open":[0-9]*' | cut -d: -f2)
  echo $(( ${n:-1} - 1 ))
}
echo "elapsed_s,phase,rss_kib,fds,conns_open" >"$out/samples.csv"
start=$(date +%s)
(
  while kill -0 "$server" 2>/dev/null; do
    echo "$(( $(date +%s) - start )),$(cat "$phase_file"),$(rss_kib),$(fds),$(conns)" >>"$out/samples.csv"
    sleep 1
  done
) &
sampler=$!
pids+=("$sampler")

# ─── load ──────────────────────────────────────────────────────────────────────────────────
# Runs every load for $1 seconds, logs under the name $2; returns non-zero if a load failed.
load() {
  local secs=$1 tag=$2 failed=0 lp=()
  wrk -t1 -c20 -d"${secs}s" --timeout 5s "http://$http_addr/" >"$out/$tag-wrk.log" 2>&1 & lp+=($!)
  (
    end=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -lt "$end" ]; do
      redis-benchmark -h 127.0.0.1 -p "$kv_port" -c 20 -P 8 -n 50000 -t ping,set,get,incr,mset -q \
        || exit 1
    done
  ) >"$out/$tag-redis-benchmark.log" 2>&1 & lp+=($!)
  python3 scripts/soak_load.py echo "$echo_addr" --secs "$secs" >"$out/$tag-echo.log" 2>&1 & lp+=($!)
  python3 scripts/soak_load.py chat "$chat_addr" --secs "$secs" >"$out/$tag-chat.log" 2>&1 & lp+=($!)
  python3 scripts/soak_load.py udp "$echo_addr" --secs "$secs" >"$out/$tag-udp.log" 2>&1 & lp+=($!)
  python3 scripts/soak_load.py slowloris "$http_addr" --secs "$secs" >"$out/$tag-slowloris.log" 2>&1 & lp+=($!)
  pids+=("${lp[@]}")
  for pid in "${lp[@]}"; do wait "$pid" || failed=1; done
  return $failed
}

# Waits until no connection is open (up to $1 seconds); prints the seconds it took.
quiesce() {
  local waited=0
  while [ "$(conns)" -gt 0 ] && [ "$waited" -lt "$1" ]; do sleep 1; waited=$((waited + 1)); done
  echo "$waited"
}

failures=()
echo "== warm-up: ${warmup}s"
load "$warmup" warmup || failures+=("a warm-up load reported errors (see $out/warmup-*.log)")
echo settle >"$phase_file"
quiesce 30 >/dev/null
sleep 2
baseline=$(rss_kib)
echo "== baseline RSS after warm-up: ${baseline} KiB; load: ${secs}s"
echo load >"$phase_file"
load "$secs" load || failures+=("a load reported errors (see $out/load-*.log)")
echo drain >"$phase_file"
drained_in=$(quiesce "$drain_secs")
sleep 2
final_conns=$(conns)
final_rss=$(rss_kib)
final_fds=$(fds)
echo done >"$phase_file"
sleep 1.5

# ─── verdict ───────────────────────────────────────────────────────────────────────────────
kill -0 "$server" 2>/dev/null || failures+=("the server died")
[ "$final_conns" -eq 0 ] || failures+=("$final_conns connections still open ${drain_secs}s after the load")
low=$(( baseline * 90 / 100 )); high=$(( baseline * 110 / 100 ))
if [ "$final_rss" -lt "$low" ] || [ "$final_rss" -gt "$high" ]; then
  failures+=("RSS ${final_rss} KiB is outside the baseline ${baseline} KiB ±10%")
fi
peak=$(awk -F, 'NR > 1 && $3 > m { m = $3 } END { print m }' "$out/samples.csv")
peak_fds=$(awk -F, 'NR > 1 && $4 > m { m = $4 } END { print m }' "$out/samples.csv")
peak_conns=$(awk -F, 'NR > 1 && $5 > m { m = $5 } END { print m }' "$out/samples.csv")
{
  echo "soak: ${secs}s of load after ${warmup}s of warm-up ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
  echo "RSS KiB: baseline $baseline, peak $peak, after drain $final_rss ($(( (final_rss - baseline) * 100 / baseline ))%)"
  echo "open fds: peak $peak_fds, after drain $final_fds; connections: peak $peak_conns, after drain $final_conns (drained in ${drained_in}s)"
  grep -h "Requests/sec\|requests in\|Non-2xx\|Socket errors" "$out/load-wrk.log" | sed 's/^ */wrk: /'
  # -t ping,set,get,incr,mset prints 6 result lines a run: ping is PING_INLINE and PING_MBULK.
  echo "redis-benchmark: $(grep -c "requests per second" "$out/load-redis-benchmark.log") result lines (6 a run); last run: $(grep "requests per second" "$out/load-redis-benchmark.log" | tail -6 | tr -s ' \r\n' ' ')"
  cat "$out/load-echo.log" "$out/load-chat.log" "$out/load-udp.log" "$out/load-slowloris.log"
  if [ ${#failures[@]} -eq 0 ]; then echo "PASS"; else printf 'FAIL: %s\n' "${failures[@]}"; fi
} | tee "$out/summary.txt"
[ ${#failures[@]} -eq 0 ]
