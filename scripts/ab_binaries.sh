#!/usr/bin/env bash
# scripts/ab_binaries.sh: two builds of reactor, A/B, on this machine: HTTP GET / (wrk) and kv GET
# -P 1 / -P 16 (redis-benchmark), alternating OLD and NEW for 3 rounds; prints req/s and server CPU
# µs per request (utime+stime from /proc/PID/stat). Server on core 0, client on core 1, loopback only.
# OLD=path NEW=path scripts/ab_binaries.sh   (defaults: /tmp/old-target/release/reactor, target/release/reactor)
set -u
trap 'jobs -p | xargs -r kill 2>/dev/null' EXIT
OLD=${OLD:-/tmp/old-target/release/reactor}
NEW=${NEW:-target/release/reactor}
# utime+stime in clock ticks (100 a second: x 10000 gives µs)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run_http() { # bin port
  RUST_LOG=warn taskset -c 0 $1 serve --http 127.0.0.1:$2 >/dev/null 2>&1 & local pid=$!
  sleep 0.5; taskset -c 1 wrk -t1 -c50 -d2s http://127.0.0.1:$2/ >/dev/null 2>&1
  local c0=$(cpu $pid)
  local out=$(taskset -c 1 wrk -t1 -c50 -d8s http://127.0.0.1:$2/ 2>&1)
  local c1=$(cpu $pid); kill $pid; wait $pid 2>/dev/null
  local reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$rps $(echo "($c1-$c0)*10000/$reqs" | bc -l)"
}
run_kv() { # bin port P n test
  RUST_LOG=warn taskset -c 0 $1 serve --kv 127.0.0.1:$2 >/dev/null 2>&1 & local pid=$!
  sleep 0.5
  local c0=$(cpu $pid)
  local out=$(taskset -c 1 redis-benchmark -p $2 -c 50 -n $4 -P $3 -t $5 --csv 2>/dev/null | tail -1)
  local c1=$(cpu $pid); kill $pid; wait $pid 2>/dev/null
  local rps=$(echo "$out" | cut -d, -f2 | tr -d '"')
  echo "$rps $(echo "($c1-$c0)*10000/$4" | bc -l)"
}
for round in 1 2 3; do
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    echo "$round $v http $(run_http $bin 28300)"
    echo "$round $v get1 $(run_kv $bin 28301 1 1000000 get)"
    echo "$round $v get16 $(run_kv $bin 28302 16 10000000 get)"
  done
done
