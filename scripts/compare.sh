#!/usr/bin/env bash
# scripts/compare.sh — reactor against the servers it means to beat, on this machine, in one run.
#
#   HTTP    reactor serve --http   vs  nginx         (client: wrk)
#   kv      reactor serve --kv     vs  redis-server  (client: redis-benchmark)
#   memory  RSS per idle connection, 10,000 connections held by a python3 client
#   echo    reactor serve --echo/--udp-echo  vs  tokio current_thread (examples/tokio_echo.rs)
#           and a thread-per-connection std server (examples/threaded_echo.rs)
#           (client: reactor load --json; it verifies every reply)
#   tls     echo over TLS vs plain (reactor load [--tls]); HTTPS GET / vs nginx, TLS 1.3 (wrk)
#   overload  a light open-loop HTTP client's latency, alone and while echo is flooded
#   reactors  echo and HTTP with --reactors 1 vs 2, and the connections each reactor got
#   client  the load generator itself: reactor load echo vs a tokio client (examples/tokio_load.rs),
#           both driving one reactor serve --echo; shows ours is not what limits the echo rows
#
# What it does, in order: install missing tools (Debian, needs root), `cargo build --release`,
# start each pair of servers pinned to one core, drive them from the other core, alternating
# ours / peer / ours / peer ..., then hand the raw numbers to scripts/compare_report.py, which
# prints markdown tables, rewrites the marked section of docs/benchmarks.md and draws
# docs/img/compare.svg. docs/benchmarks.md explains how to read the numbers.
#
# Knobs (environment variables):
#   RUNS=5            measured runs per server per row (A/B alternated)
#   DURATION=10       seconds per wrk / reactor load / tokio_load run; also sizes the redis-benchmark counts
#   WARMUP=2          seconds of unrecorded wrk load per HTTP server before the runs (0: none);
#                     client: seconds of unrecorded reactor load echo before its runs
#   CONNS=50          client connections (wrk -c, redis-benchmark -c, reactor load -c, tokio_load -c)
#   KV_TESTS=set,get,ping_inline,ping_mbulk  redis-benchmark tests, one invocation each (set first: get then hits)
#   KV_PIPELINE=16    the pipelined kv rows use -P KV_PIPELINE (the plain rows use -P 1)
#   KV_REQUESTS       -n for -P 1 rows        (default DURATION x 100,000: ~ DURATION seconds)
#   KV_REQUESTS_PIPELINED  -n for -P 16 rows  (default 10 x KV_REQUESTS: -P 16 runs ~10x faster)
#   MEM_CONNS=10000   idle connections held for the memory rows
#   ECHO_DEPTH=16     the pipelined echo row's --depth
#   ECHO_LARGE=16384  the large echo row's message size in bytes
#   SYSCALLS=0        1: one extra run per echo row and server under `perf stat -e
#                     raw_syscalls:sys_enter -p PID` (strace -c -f if perf cannot), reported
#                     as syscalls per request; those runs are not in the throughput figures
#   OVERLOAD_RATE=2000  overload: the light client's open-loop rate (reactor load http --rate)
#   FLOOD_CONNS=50 FLOOD_DEPTH=16 FLOOD_SIZE=64        overload: the echo flood's shape (small pipelined messages: the shape that loads the server most per client CPU)
#   SECTIONS="http kv memory echo"   which sections to run; also available:
#                     tls (echo plain vs TLS; HTTPS vs nginx), overload (a light client's
#                     latency while another listener is flooded), reactors (--reactors 1 vs 2),
#                     client (reactor load vs tokio_load, 64 B ping-pong and depth ECHO_DEPTH),
#                     post (HTTP POST /echo of 64 B, 1 KiB and ECHO_LARGE bodies, reactor vs
#                     nginx with its echo module, driven by reactor load --post)
#   SERVER_CPU=0 CLIENT_CPU=1        the cores for servers and for clients
#   PORT_BASE=28000   ports PORT_BASE..PORT_BASE+19 are used (all on 127.0.0.1)
#   NOTE="..."        a line printed above the tables (e.g. "smoke run on a busy machine")
#   UPDATE_DOCS=1     0: print the tables only, leave docs/ alone (1 also keeps the raw runs
#                     in docs/data/compare-{results,meta}.tsv, to re-render or re-analyse)
#   INSTALL=1         0: never apt-get; fail if a tool is missing
#   REACTOR_ARGS=""   extra flags for every `reactor serve`, e.g. "--busy-poll 50"
#   REACTOR_LOG=warn  RUST_LOG for reactor (info logs a line per accepted connection)
#   REACTOR=path      the binary to measure (default: ${CARGO_TARGET_DIR:-target}/release/reactor, built first)
#
# Every server it starts is killed on exit (also on Ctrl-C or an error), and its temp
# directory removed. Every client run is bounded by `timeout`.

set -euo pipefail

# ------------------------------------------------------------------------------ settings
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
KV_TESTS=${KV_TESTS:-set,get,ping_inline,ping_mbulk}
KV_PIPELINE=${KV_PIPELINE:-16}
KV_REQUESTS=${KV_REQUESTS:-$((DURATION * 100000))}
KV_REQUESTS_PIPELINED=${KV_REQUESTS_PIPELINED:-$((KV_REQUESTS * 10))}
MEM_CONNS=${MEM_CONNS:-10000}
ECHO_DEPTH=${ECHO_DEPTH:-16}
ECHO_LARGE=${ECHO_LARGE:-16384}
SYSCALLS=${SYSCALLS:-0}
OVERLOAD_RATE=${OVERLOAD_RATE:-2000}
FLOOD_CONNS=${FLOOD_CONNS:-50}
FLOOD_DEPTH=${FLOOD_DEPTH:-16}
FLOOD_SIZE=${FLOOD_SIZE:-64}
SECTIONS=${SECTIONS:-http kv memory echo}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT_BASE=${PORT_BASE:-28000}
NOTE=${NOTE:-}
UPDATE_DOCS=${UPDATE_DOCS:-1}
INSTALL=${INSTALL:-1}
REACTOR_LOG=${REACTOR_LOG:-warn}

# Ours on even ports, the peer on the next one, so nothing collides with the defaults
# (8080, 6379, 6380) that someone else on the machine may be using.
HTTP_OURS=$((PORT_BASE + 0))
HTTP_PEER=$((PORT_BASE + 1))
KV_OURS=$((PORT_BASE + 2))
KV_PEER=$((PORT_BASE + 3))
ECHO_OURS=$((PORT_BASE + 4)) # TCP and UDP on the same port number
ECHO_TOKIO=$((PORT_BASE + 5))
ECHO_THREADED=$((PORT_BASE + 6))
TLS_ECHO_PLAIN=$((PORT_BASE + 7)) # tls: one server, a plain and a tls:// echo listener
TLS_ECHO_TLS=$((PORT_BASE + 8))
HTTPS_OURS=$((PORT_BASE + 9))
HTTPS_PEER=$((PORT_BASE + 10))
OVL_ECHO=$((PORT_BASE + 11)) # overload: the flooded listener
OVL_HTTP=$((PORT_BASE + 12)) #           and the light client's
RX1_ECHO=$((PORT_BASE + 13)) # reactors: --reactors 1
RX1_HTTP=$((PORT_BASE + 14))
RX2_ECHO=$((PORT_BASE + 15)) #           --reactors 2
RX2_HTTP=$((PORT_BASE + 16))
CLIENT_ECHO=$((PORT_BASE + 17)) # client: the one echo server both load clients drive
POST_OURS=$((PORT_BASE + 18)) # post: POST /echo
POST_PEER=$((PORT_BASE + 19))

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REACTOR=${REACTOR:-${CARGO_TARGET_DIR:-$ROOT/target}/release/reactor}
# `reactor serve` with the extra flags of REACTOR_ARGS (e.g. "--busy-poll 50", split on
# spaces): every server of ours starts as "${SERVE[@]}" --kv ... and so on.
read -r -a SERVE <<<"${REACTOR_ARGS:-}"
SERVE=("$REACTOR" serve ${SERVE[@]+"${SERVE[@]}"})
EXAMPLES=$(dirname "$REACTOR")/examples # tokio_echo, threaded_echo, tokio_load: built with the binary
NGINX_ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
CLK_TCK=$(getconf CLK_TCK) # /proc/PID/stat counts CPU time in these ticks (100 per second, usually)

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() {
    printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
    exit 1
}

# ------------------------------------------------------------------------------ cleanup
# Everything we start goes into SERVER_PIDS / CLIENT_PIDS; everything we write goes under TMP.
# The EXIT trap runs on success, on `set -e` failures and (through the INT/TERM traps, which
# turn a signal into an exit) on Ctrl-C, so no server outlives the script.
SERVER_PIDS=()
CLIENT_PIDS=()
TMP=""

stop_pid() { # stop_pid PID: TERM, wait up to 3 s, then KILL. Only ever a PID we started.
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "pid $pid ignored SIGTERM for 3 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${CLIENT_PIDS[@]}" "${SERVER_PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $TMP && -d $TMP ]]; then
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------ tools
# command -> Debian package that provides it.
need_tools() {
    local -A pkg=(
        [wrk]=wrk [nginx]=nginx-light [redis-server]=redis-server [redis-benchmark]=redis-tools
        [redis-cli]=redis-tools [openssl]=openssl [taskset]=util-linux [python3]=python3 [curl]=curl [pgrep]=procps
    )
    local missing=() cmd
    for cmd in "${!pkg[@]}"; do
        command -v "$cmd" >/dev/null || missing+=("${pkg[$cmd]}")
    done
    # The post section's peer: nginx's echo module (Debian: libnginx-mod-http-echo).
    if [[ " $SECTIONS " == *" post "* && ! -e $NGINX_ECHO_MODULE ]]; then
        missing+=(libnginx-mod-http-echo)
    fi
    # SYSCALLS=1 counts with perf (Debian: linux-perf) and falls back to strace.
    if [[ $SYSCALLS == 1 ]] && ! command -v perf >/dev/null && ! command -v strace >/dev/null; then
        missing+=(linux-perf strace)
    fi
    ((${#missing[@]} == 0)) && return 0
    # Deduplicate (redis-tools provides two of the commands).
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    [[ $INSTALL == 1 ]] || die "missing packages: ${missing[*]} (INSTALL=0)"
    ((EUID == 0)) || die "missing packages: ${missing[*]}; run as root or install them"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The Debian packages start system services; we want only our own instances.
    systemctl disable --now nginx redis-server >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------------------ /proc helpers
# A server may be several processes (nginx: a master and its worker). The numbers we want
# are for the whole tree, so each helper walks PID and its descendants.
tree_pids() {
    local pid=$1 child
    echo "$pid"
    for child in $(pgrep -P "$pid" || true); do
        tree_pids "$child"
    done
}

# CPU time (user + system, in clock ticks) spent so far by the tree. /proc/PID/stat field 2
# is "(comm)" and may contain spaces, so cut everything up to the last ") " first; the rest
# starts at field 3, which puts utime (field 14) at index 11 and stime (15) at 12. The
# process's line already sums all its threads (Redis has background threads).
# With a second argument `user`, only the user-space part (utime): kept apart because on
# loopback most of a server's time is kernel time that every server pays alike (the same
# syscalls per request), so the user part shows what the server's own code costs.
cpu_ticks() {
    local total=0 pid stat rest
    local -a f
    for pid in $(tree_pids "$1"); do
        stat=$(<"/proc/$pid/stat") || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        if [[ ${2:-} == user ]]; then
            total=$((total + f[11]))
        else
            total=$((total + f[11] + f[12]))
        fi
    done
    echo "$total"
}

user_ticks() { cpu_ticks "$1" user; }

rss_kib() { # resident memory of the tree in KiB (VmRSS)
    local total=0 pid kib
    for pid in $(tree_pids "$1"); do
        kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

fd_count() { # open file descriptors of the tree: how we know connections were accepted
    local total=0 pid
    for pid in $(tree_pids "$1"); do
        total=$((total + $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
    done
    echo "$total"
}

# Established TCP connections per reactor of a reactor process, on local PORT(s), as "a/b":
# one count per epoll instance (one per reactor: mio's Poll), in file-descriptor order. Read
# from outside without touching the server: each epoll's /proc/PID/fdinfo lists the inode
# of every file registered in it ("tfd: … ino:HEX"), and /proc/PID/net/tcp{,6} gives the
# inodes of the established sockets (state 01) on those ports.
conn_spread() {
    python3 - "$@" <<'PY'
import os, sys
pid, ports = sys.argv[1], {int(p) for p in sys.argv[2:]}
established = set()
for table in ("tcp", "tcp6"):
    try:
        lines = open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) in ports:
            established.add(int(f[9]))
counts = []
for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
    try:
        if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
            continue
        info = open(f"/proc/{pid}/fdinfo/{fd}").read()
    except OSError:
        continue
    counts.append(sum(1 for l in info.splitlines()
                      if l.startswith("tfd:") and "ino:" in l
                      and int(l.split("ino:")[1].split()[0], 16) in established))
print("/".join(map(str, counts)) or "?")
PY
}

# spread_begin PID PORT FILE / spread_end FILE: with SPREAD=1, conn_spread sampled once,
# halfway through a client run (every client here keeps its connections for the whole
# run), into FILE; spread_end waits for it and sets SPREAD_EXTRA to "spread=a/b" (else "").
SPREAD_JOB=""
SPREAD_EXTRA=""
spread_begin() {
    SPREAD_JOB=""
    [[ $SPREAD == 1 ]] || return 0
    local pid=$1 port=$2 file=$3
    (
        sleep $((DURATION / 2 + 1))
        conn_spread "$pid" "$port" >"$file" 2>/dev/null || true
    ) &
    SPREAD_JOB=$!
    CLIENT_PIDS+=("$SPREAD_JOB")
}
spread_end() {
    SPREAD_EXTRA=""
    [[ -n $SPREAD_JOB ]] || return 0
    wait "$SPREAD_JOB" 2>/dev/null || true
    untrack "$SPREAD_JOB"
    SPREAD_JOB=""
    [[ -s $1 ]] && SPREAD_EXTRA="spread=$(<"$1")"
    return 0
}

# ------------------------------------------------------------------------------ servers
# start_server NAME PORT COMMAND...: run COMMAND pinned to SERVER_CPU, wait until PORT accepts.
# The PID lands in the global LAST_PID (a $(...) would run it in a subshell we cannot track).
# `taskset -c CPU cmd` execs cmd, so $! is the server itself, and children (nginx's worker,
# Redis's threads) inherit the affinity.
LAST_PID=""
start_server() {
    start_server_on "$SERVER_CPU" "$@"
}

# start_server_on CPUS NAME PORT COMMAND...: the same, on a taskset CPU list such as "0,1".
start_server_on() {
    local cpus=$1 name=$2 port=$3
    shift 3
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is already in use; set PORT_BASE to somewhere free"
    fi
    taskset -c "$cpus" "$@" >"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    SERVER_PIDS+=("$LAST_PID")
    for _ in $(seq 100); do
        kill -0 "$LAST_PID" 2>/dev/null || {
            cat "$TMP/$name.log" >&2
            die "$name exited during start-up"
        }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not listen on 127.0.0.1:$port within 10 s"
}

# stop_server PID: stop it and forget it, so the EXIT trap never signals a PID that the
# kernel may since have given to someone else's process.
stop_server() {
    stop_pid "$1"
    untrack "$1"
}

untrack() {
    local servers=() clients=() pid
    for pid in "${SERVER_PIDS[@]}"; do [[ $pid == "$1" ]] || servers+=("$pid"); done
    for pid in "${CLIENT_PIDS[@]}"; do [[ $pid == "$1" ]] || clients+=("$pid"); done
    SERVER_PIDS=("${servers[@]}")
    CLIENT_PIDS=("${clients[@]}")
}

# client SECS OUT COMMAND...: run a load client pinned to CLIENT_CPU, killed after SECS,
# output to OUT. It runs in the background and we `wait` for it because bash runs a trap
# only once the foreground command has finished, whereas a signal interrupts `wait` at once:
# this way Ctrl-C or SIGTERM stops everything now, not after the current run.
client() {
    client_on "$CLIENT_CPU" "$@"
}

# client_on CPUS SECS OUT COMMAND...: the same, on a taskset CPU list such as "0,1".
client_on() {
    local cpus=$1 secs=$2 out=$3 pid rc=0
    shift 3
    taskset -c "$cpus" timeout "$secs" "$@" >"$out" 2>&1 &
    pid=$!
    CLIENT_PIDS+=("$pid")
    wait "$pid" || rc=$?
    untrack "$pid"
    return "$rc"
}

# reactor logs every accepted connection at info level; the peers log nothing per connection
# (nginx: access_log off, error_log warn; Redis: notice). RUST_LOG=warn keeps that even.
# `env` execs too, so LAST_PID is still the reactor's PID.
start_reactor_http() {
    start_server reactor-http "$HTTP_OURS" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" --http "127.0.0.1:$HTTP_OURS" "$@"
}
start_reactor_kv() {
    start_server reactor-kv "$KV_OURS" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" --kv "127.0.0.1:$KV_OURS" "$@"
}

# nginx, configured as close to our HTTP service as nginx gets:
# * master_process on + worker_processes 1 is how nginx is actually deployed; the master only
#   waits for signals, and cpu_ticks sums master and worker, so the accounting stays exact.
#   (master_process off would give one PID, but it is documented as a development mode.)
# * daemon off: the PID we started stays the master, so the EXIT trap can stop it.
# * keepalive_requests 1000000: nginx's default (1000) closes every keep-alive connection
#   after 1,000 requests, making wrk reconnect; reactor never does. A fairness choice.
# * keepalive_timeout / client_header_timeout 300 s: reactor's idle timeout is 300 s, and the
#   memory rows hold connections that never send a request.
# * worker_connections: room for the memory rows' idle connections.
# start_nginx [PORT CERT KEY]: with a certificate and key (PEM), the listener is
# `listen PORT ssl;` with `ssl_protocols TLSv1.3;` (the tls section), else plain HTTP_PEER.
# With NGINX_ECHO=1 (post section), it also serves `POST /echo` through the echo module, the
# body kept in memory (client_body_buffer_size = the body limit: no temporary file on disk).
NGINX_ECHO=0
start_nginx() {
    local port=${1:-$HTTP_PEER} cert=${2:-} key=${3:-}
    local dir=$TMP/nginx-$port listen="listen 127.0.0.1:$port;" tls="" module="" body="" echo_location=""
    if [[ $NGINX_ECHO == 1 ]]; then
        module="load_module $NGINX_ECHO_MODULE;"
        body="client_body_buffer_size 1m;
    client_max_body_size 1m;"
        echo_location="location = /echo {
            echo_read_request_body;
            echo_request_body;
        }"
    fi
    if [[ -n $cert ]]; then
        listen="listen 127.0.0.1:$port ssl;"
        # No session cache or tickets needed: wrk keeps its connections for the whole run.
        tls="ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.3;"
    fi
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
$module
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $(ulimit -n);
events {
    worker_connections $((MEM_CONNS + 1024));
}
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_header_timeout 300s;
    $body
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        $listen
        $tls
        location = / {
            default_type text/plain;
            return 200 "Hello, World!\n";
        }
        $echo_location
    }
}
EOF
    # -e: the error log nginx uses before it has read the config.
    nginx -t -q -e "$dir/error.log" -c "$dir/nginx.conf" -p "$dir" || die "nginx rejected $dir/nginx.conf"
    start_server "nginx-$port" "$port" nginx -e "$dir/error.log" -c "$dir/nginx.conf" -p "$dir"
}

# redis-server with persistence off (no RDB snapshots, no AOF) and nothing written outside TMP.
start_redis() {
    mkdir -p "$TMP/redis"
    start_server redis "$KV_PEER" redis-server --bind 127.0.0.1 --port "$KV_PEER" \
        --save '' --appendonly no --dir "$TMP/redis" --logfile '' \
        --maxclients $((MEM_CONNS + 100))
}

# Set with `local` by a section (bash scoping is dynamic, so the helpers it calls see them):
REC_SECTION="" # echo_load: the section its records go to (empty: echo)
CLIENT_PIN=""  # wrk_run, echo_load: taskset CPU list for the client (empty: CLIENT_CPU)
SPREAD=0       # 1: wrk_run, echo_load sample the server's connections per reactor mid-run
LOAD_PEER=""   # echo_load: run this client (ADDR LOAD-ARGS --duration S, prints JSON) instead of reactor load
CPU_PCT=0      # 1: echo_load also records server and client CPU, in % of one core

# ------------------------------------------------------------------------------ results
# One line per measured run, tab-separated, read by compare_report.py:
#   section  row  server  run  rps  p99_ms  cpu_us_per_req  requests  errors  [key=value ...]
# (the optional key=value columns carry what only one section has, e.g. spread=26/24)
record() {
    local IFS=$'\t'
    echo "$*" >>"$TMP/results.tsv"
}
# Facts about the run (machine, versions, commands): key, value.
meta() {
    local IFS=$'\t'
    echo "$*" >>"$TMP/meta.tsv"
}

# µs of server CPU per request, from a tick delta.
cpu_us() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.3f", (n > 0 ? t * 1e6 / hz / n : 0) }'; }

# CPU time used so far by this shell's finished children, in ms, into CHILD_CPU_MS: the second
# line of bash's `times` ("0m1.234s 0m0.567s", user and system). A client that has been waited
# for is in it, with what it waited for in turn (`timeout` waits for the real client). No
# $(...) and no forks here: a subshell has children of its own, and a fork between two
# readings would count as the client's.
CHILD_CPU_MS=0
child_cpu_ms() {
    local user sys t ms=0
    times >"$TMP/times"
    { read -r _ && read -r user sys; } <"$TMP/times"
    for t in "$user" "$sys"; do
        t=${t%s}
        local secs=${t#*m}
        ms=$((ms + ${t%%m*} * 60000 + 10#${secs//[.,]/}))
    done
    CHILD_CPU_MS=$ms
}

# ------------------------------------------------------------------------------ HTTP
# wrk_run SERVER PID PORT RUN [SECTION ROW SCHEME]: one wrk run, the server's CPU sampled
# around it. The defaults are the http section's: http "GET /" http. The client runs on
# CLIENT_PIN; with SPREAD=1 the connections per reactor are sampled mid-run (see spread_begin).
wrk_run() {
    local server=$1 pid=$2 port=$3 run=$4 section=${5:-http} row=${6:-GET /} scheme=${7:-http}
    local out=$TMP/wrk-$section-$server-$run.txt t0 t1 u0 u1 extra=""
    out=${out// /_}
    spread_begin "$pid" "$port" "$out.spread"
    u0=$(user_ticks "$pid")
    t0=$(cpu_ticks "$pid")
    if ! client_on "${CLIENT_PIN:-$CLIENT_CPU}" $((DURATION + 30)) "$out" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$scheme://127.0.0.1:$port/"; then
        spread_end "$out.spread"
        warn "wrk against $server failed (run $run):"
        cat "$out" >&2
        return 0
    fi
    t1=$(cpu_ticks "$pid")
    u1=$(user_ticks "$pid")
    spread_end "$out.spread"
    extra=$SPREAD_EXTRA
    # wrk prints e.g. "  1234567 requests in 10.00s, 150.00MB read", "Requests/sec: 123456.78",
    # under "Latency Distribution" "     99%    1.23ms", and, only when non-zero,
    # "Socket errors: connect 0, read 0, write 0, timeout 0" / "Non-2xx or 3xx responses: 5".
    local requests rps p99 errors
    requests=$(awk '/ requests in / { print $1 }' "$out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p99=$(awk '$1 == "99%" {
            v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
            print (u == "us" ? v / 1000 : u == "ms" ? v : u == "s" ? v * 1000 : v / 60000) }' "$out")
    errors=$(awk '/^  Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                  /Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' "$out")
    [[ -n $requests && -n $rps && -n $p99 ]] || {
        warn "could not parse wrk output for $server run $run"
        return 0
    }
    ((errors == 0)) || warn "$server run $run: $errors socket errors / non-2xx replies (see wrk output)"
    record "$section" "$row" "$server" "$run" "$rps" "$p99" "$(cpu_us $((t1 - t0)) "$requests")" "$requests" "$errors" \
        "user_us=$(cpu_us $((u1 - u0)) "$requests")" ${extra:+"$extra"}
    printf '    %-10s %-22s run %d: %10.0f req/s  p99 %7.3f ms  %6.2f µs CPU/req %s\n' \
        "$server" "$scheme $row" "$run" "$rps" "$p99" "$(cpu_us $((t1 - t0)) "$requests")" "$extra" >&2
}

# Both servers must give the same answer before their speed means anything.
# check_http SERVER PORT [CA-FILE]: with a CA file, over https (curl verifies the certificate).
check_http() {
    local server=$1 port=$2 ca=${3:-} body url=http://127.0.0.1:$2/
    local -a tls=()
    [[ -z $ca ]] || { url=https://127.0.0.1:$port/ && tls=(--cacert "$ca"); }
    body=$(curl -sS --max-time 5 "${tls[@]}" "$url") || die "$server: GET $url failed"
    [[ $body == "Hello, World!" ]] || die "$server: GET $url answered '$body'"
    [[ -n $ca ]] || meta "reply_bytes_$server" "$(curl -sS --max-time 5 -o /dev/null -w '%{size_header}+%{size_download}' "$url")"
}

bench_http() {
    say "HTTP: reactor vs nginx, wrk -t1 -c$CONNS -d${DURATION}s, $RUNS runs each, alternating"
    local ours peer run
    start_reactor_http
    ours=$LAST_PID
    start_nginx
    peer=$LAST_PID
    check_http reactor "$HTTP_OURS"
    check_http nginx "$HTTP_PEER"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --http 127.0.0.1:$HTTP_OURS"
    meta command "taskset -c $SERVER_CPU nginx -c nginx.conf   # 1 worker, config written by the script"
    meta command "taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency http://127.0.0.1:PORT/"
    if ((WARMUP > 0)); then
        # Unrecorded: let both servers fault in their memory and reach a steady state.
        client $((WARMUP + 30)) /dev/null wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$HTTP_OURS/"
        client $((WARMUP + 30)) /dev/null wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$HTTP_PEER/"
    fi
    for run in $(seq "$RUNS"); do
        wrk_run reactor "$ours" "$HTTP_OURS" "$run"
        wrk_run nginx "$peer" "$HTTP_PEER" "$run"
    done
    stop_server "$ours"
    stop_server "$peer"
}

# ------------------------------------------------------------------------------ kv
# bench_run SERVER PID PORT RUN TEST PIPELINE N: one redis-benchmark invocation for one test.
# --csv instead of -q: the same quiet one-line-per-test output, plus avg/min/p50/p95/p99/max
# latency (redis-benchmark 7.x; -q alone gives only p50).
bench_run() {
    local server=$1 pid=$2 port=$3 run=$4 test=$5 pipe=$6 n=$7 out=$TMP/rb-$1-$5-$6-$4.txt t0 t1 u0 u1
    local row=${test^^}
    ((pipe > 1)) && row="$row -P $pipe"
    u0=$(user_ticks "$pid")
    t0=$(cpu_ticks "$pid")
    # Count-bounded, so bound it in time too: 10x the expected duration, then give up.
    if ! client $((DURATION * 10 + 30)) "$out" \
        redis-benchmark -h 127.0.0.1 -p "$port" -c "$CONNS" -n "$n" -P "$pipe" -t "$test" --csv; then
        warn "redis-benchmark against $server failed or timed out ($row, run $run):"
        tail -5 "$out" >&2
        return 0
    fi
    t1=$(cpu_ticks "$pid")
    u1=$(user_ticks "$pid")
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    local line rps p99
    # Take the last data line rather than matching the test's name: `-t ping` reports itself
    # as PING_INLINE and PING_MBULK.
    line=$(grep '^"' "$out" | grep -v '^"test"' | tail -1 | tr -d '"') || true
    rps=$(cut -d, -f2 <<<"$line")
    p99=$(cut -d, -f7 <<<"$line")
    [[ -n $line && -n $rps && -n $p99 ]] || {
        warn "could not parse redis-benchmark output for $server $row run $run:"
        cat "$out" >&2
        return 0
    }
    record kv "$row" "$server" "$run" "$rps" "$p99" "$(cpu_us $((t1 - t0)) "$n")" "$n" 0 "user_us=$(cpu_us $((u1 - u0)) "$n")"
    printf '    %-8s %-10s run %d: %10.0f req/s  p99 %7.3f ms  %6.2f µs CPU/req\n' \
        "$server" "$row" "$run" "$rps" "$p99" "$(cpu_us $((t1 - t0)) "$n")" >&2
}

check_kv() {
    local server=$1 port=$2 got
    got=$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" PING) || die "$server: PING failed"
    [[ $got == PONG ]] || die "$server: PING answered '$got'"
}

bench_kv() {
    say "kv: reactor vs redis-server, redis-benchmark -c $CONNS -t $KV_TESTS -P 1 and -P $KV_PIPELINE, $RUNS runs each"
    local ours peer run pipe n test
    start_reactor_kv
    ours=$LAST_PID
    start_redis
    peer=$LAST_PID
    check_kv reactor "$KV_OURS"
    check_kv redis "$KV_PEER"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --kv 127.0.0.1:$KV_OURS"
    meta command "taskset -c $SERVER_CPU redis-server --port $KV_PEER --save '' --appendonly no"
    meta command "taskset -c $CLIENT_CPU redis-benchmark -p PORT -c $CONNS -n $KV_REQUESTS -P 1 -t TEST --csv   # TEST in $KV_TESTS, one at a time"
    meta command "taskset -c $CLIENT_CPU redis-benchmark -p PORT -c $CONNS -n $KV_REQUESTS_PIPELINED -P $KV_PIPELINE -t TEST --csv"
    # The run loop is outermost so that slow drift in the machine's load spreads over every
    # row; within it, each row is ours then peer, back to back.
    for run in $(seq "$RUNS"); do
        for pipe in 1 "$KV_PIPELINE"; do
            n=$KV_REQUESTS
            ((pipe > 1)) && n=$KV_REQUESTS_PIPELINED
            for test in ${KV_TESTS//,/ }; do
                bench_run reactor "$ours" "$KV_OURS" "$run" "$test" "$pipe" "$n"
                bench_run redis "$peer" "$KV_PEER" "$run" "$test" "$pipe" "$n"
            done
        done
    done
    stop_server "$ours"
    stop_server "$peer"
}

# ------------------------------------------------------------------------------ memory
# hold_idle SERVER PID PORT ROW: RSS before and while MEM_CONNS idle connections are open.
# Each server is started fresh for this, so its baseline holds no buffers from earlier load.
hold_idle() {
    local server=$1 pid=$2 port=$3 row=$4 base_rss base_fds rss fds ready=$TMP/idle-$1-$4.ready
    sleep 0.5
    base_rss=$(rss_kib "$pid")
    base_fds=$(fd_count "$pid")
    taskset -c "$CLIENT_CPU" timeout 120 python3 "$ROOT/scripts/idle_conns.py" \
        "$port" "$MEM_CONNS" 90 "$ready" >"$TMP/idle-$server.log" 2>&1 &
    local holder=$!
    CLIENT_PIDS+=("$holder")
    # Wait until the client has connected everything and the server has accepted it all
    # (its fd count went up by MEM_CONNS), then give it a moment to settle.
    for _ in $(seq 600); do
        [[ -e $ready ]] && (($(fd_count "$pid") - base_fds >= MEM_CONNS)) && break
        kill -0 "$holder" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1
    fds=$(($(fd_count "$pid") - base_fds))
    rss=$(rss_kib "$pid")
    stop_server "$holder"
    if ((fds < MEM_CONNS)); then
        warn "$server accepted only $fds of $MEM_CONNS connections:"
        cat "$TMP/idle-$server.log" >&2
        ((fds > 0)) || return 0
    fi
    # Columns reused: rps <- connections held, p99 <- baseline KiB, cpu <- KiB per connection.
    record memory "$row" "$server" 1 "$fds" "$base_rss" \
        "$(awk -v a="$base_rss" -v b="$rss" -v n="$fds" 'BEGIN { printf "%.3f", (b - a) / n }')" "$rss" 0
    printf '    %-8s %d idle connections: RSS %d -> %d KiB\n' "$server" "$fds" "$base_rss" "$rss" >&2
}

bench_memory() {
    say "memory: RSS with $MEM_CONNS idle connections"
    meta command "python3 scripts/idle_conns.py PORT $MEM_CONNS 90 READY_FILE   # opens and holds idle connections; RSS = VmRSS of the server's processes"
    start_reactor_http --max-conns $((MEM_CONNS + 100))
    hold_idle reactor "$LAST_PID" "$HTTP_OURS" "HTTP, idle"
    stop_server "$LAST_PID"
    start_nginx
    hold_idle nginx "$LAST_PID" "$HTTP_PEER" "HTTP, idle"
    stop_server "$LAST_PID"
    start_reactor_kv --max-conns $((MEM_CONNS + 100))
    hold_idle reactor "$LAST_PID" "$KV_OURS" "kv, idle"
    stop_server "$LAST_PID"
    start_redis
    hold_idle redis "$LAST_PID" "$KV_PEER" "kv, idle"
    stop_server "$LAST_PID"
}

# ------------------------------------------------------------------------------ echo
# The client is our own load generator (the only one that verifies every echoed byte), pinned
# to CLIENT_CPU like wrk and redis-benchmark. It prints one JSON record per run (--json).

# load_json FILE FIELD...: the named fields of a `reactor load --json` record, tab-separated.
# Counted errors are summed into one "errors" field.
load_json() {
    python3 - "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = lambda v: sum(v.values()) if isinstance(v, dict) else (v or 0)
r["errors"] = sum(n(r[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "mismatches"))
for k in [k for k in r if k.endswith("_us") and (k.startswith("latency_") or k.startswith("uncorrected_"))]:
    r[k[:-3] + "_ms"] = (r[k] or 0) / 1000
print("\t".join(str(r[f]) for f in sys.argv[2:]))
PY
}

# echo_load SERVER PID PORT RUN ROW LOAD-ARGS...: one `reactor load` run, server CPU around it.
# Recorded under REC_SECTION (default echo); the client runs on CLIENT_PIN; SPREAD as wrk_run.
# With LOAD_PEER set, that client runs instead (SERVER then names the client); with CPU_PCT=1
# the record also gets server_cpu_pct and client_cpu_pct (% of one core over the client's run).
echo_load() {
    local server=$1 pid=$2 port=$3 run=$4 row=$5 t0 t1 u0 u1
    local out=$TMP/load-${REC_SECTION:-echo}-${1//[^a-zA-Z0-9]/_}-$4-${5//[^a-zA-Z0-9]/_}.json
    shift 5
    local -a cmd=("$REACTOR" load "$@" --addr "127.0.0.1:$port" --duration "$DURATION" --json)
    [[ -z $LOAD_PEER ]] || cmd=("$LOAD_PEER" "127.0.0.1:$port" "$@" --duration "$DURATION")
    spread_begin "$pid" "$port" "$out.spread"
    u0=$(user_ticks "$pid")
    t0=$(cpu_ticks "$pid")
    local wall0=$EPOCHREALTIME cpu0
    child_cpu_ms
    cpu0=$CHILD_CPU_MS
    if ! client_on "${CLIENT_PIN:-$CLIENT_CPU}" $((DURATION + 30)) "$out" "${cmd[@]}"; then
        spread_end "$out.spread"
        warn "the load client failed ($server, $row, run $run):"
        tail -5 "$out" >&2
        return 0
    fi
    child_cpu_ms
    local wall1=$EPOCHREALTIME cpu1=$CHILD_CPU_MS
    t1=$(cpu_ticks "$pid")
    u1=$(user_ticks "$pid")
    spread_end "$out.spread"
    local -a extra=()
    [[ -z $SPREAD_EXTRA ]] || extra+=("$SPREAD_EXTRA")
    if [[ $CPU_PCT == 1 ]]; then
        local spct cpct
        read -r spct cpct < <(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v c=$((cpu1 - cpu0)) -v a="$wall0" -v b="$wall1" \
            'BEGIN { w = b - a; if (w <= 0) w = 1; printf "%.0f %.0f\n", t * 100 / hz / w, c / 10 / w }')
        extra+=("server_cpu_pct=$spct" "client_cpu_pct=$cpct")
    fi
    local rps p99 completed errors
    IFS=$'\t' read -r rps p99 completed errors < <(load_json "$out" requests_per_sec latency_p99_ms completed errors) || {
        warn "could not parse the load client's output for $server $row run $run"
        return 0
    }
    ((errors == 0)) || warn "$server $row run $run: $errors errors (see $out)"
    extra+=("user_us=$(cpu_us $((u1 - u0)) "$completed")")
    record "${REC_SECTION:-echo}" "$row" "$server" "$run" "$rps" "$p99" "$(cpu_us $((t1 - t0)) "$completed")" "$completed" "$errors" "${extra[@]}"
    printf '    %-12s %-22s run %d: %10.0f req/s  p99 %7.3f ms  %6.2f µs CPU/req %s\n' \
        "$server" "$row" "$run" "$rps" "$p99" "$(cpu_us $((t1 - t0)) "$completed")" "${extra[*]}" >&2
}

# Which syscall counter works here: perf (Debian linux-perf) needs root or a low
# perf_event_paranoid and tracefs; strace always works but slows the server down a lot
# (which does not change what it counts per request).
SYSCALL_TOOL=""
pick_syscall_tool() {
    if command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
        SYSCALL_TOOL=perf
    elif command -v strace >/dev/null; then
        SYSCALL_TOOL=strace
    else
        warn "SYSCALLS=1 needs perf (linux-perf) or strace; no syscall counts"
    fi
}

# echo_syscalls SERVER PID PORT ROW LOAD-ARGS...: one more run with the server's system calls
# counted from before the load starts until after it ended (threads started in between, such
# as the threaded server's, are counted too: perf's counters are inherited, strace -f
# follows them). Divided by the requests completed, so the connects' few calls are included.
echo_syscalls() {
    local server=$1 pid=$2 port=$3 row=$4 tag=${1}-${4//[^a-zA-Z0-9]/_}
    shift 4
    [[ -n $SYSCALL_TOOL ]] || return 0
    local counts=$TMP/sys-$tag.txt out=$TMP/sys-$tag.json counter
    case $SYSCALL_TOOL in
        perf) perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$counts" 2>/dev/null & ;;
        strace) strace -c -f -q -p "$pid" -o "$counts" 2>/dev/null & ;;
    esac
    counter=$!
    CLIENT_PIDS+=("$counter")
    sleep 0.5 # attached before the first request
    client $((DURATION + 30)) "$out" "$REACTOR" load "$@" --addr "127.0.0.1:$port" --duration "$DURATION" --json || true
    sleep 0.5 # the threaded server's connection threads have exited
    kill -INT "$counter" 2>/dev/null || true
    wait "$counter" 2>/dev/null || true
    untrack "$counter"
    local calls completed
    case $SYSCALL_TOOL in
        # "723436,,raw_syscalls:sys_enter,..." (or "<not counted>" when there were none)
        perf) calls=$(awk -F, '/raw_syscalls:sys_enter/ { print ($1 ~ /^[0-9]+$/ ? $1 : 0) }' "$counts") ;;
        # the "total" line of strace -c: "100.00  0.123  1  456789  12  total"
        strace) calls=$(awk '$NF == "total" { print $4 }' "$counts") ;;
    esac
    completed=$(load_json "$out" completed 2>/dev/null) || completed=0
    if [[ -z $calls || $completed == 0 ]]; then
        warn "no syscall count for $server $row ($SYSCALL_TOOL)"
        return 0
    fi
    local per
    per=$(awk -v c="$calls" -v n="$completed" 'BEGIN { printf "%.3f", c / n }')
    # Columns reused: rps <- syscalls per request.
    record syscalls "$row" "$server" 1 "$per" 0 0 "$completed" "$calls"
    printf '    %-8s %-22s %s: %d syscalls / %d requests = %s per request\n' \
        "$server" "$row" "$SYSCALL_TOOL" "$calls" "$completed" "$per" >&2
}

bench_echo() {
    [[ -x $EXAMPLES/tokio_echo && -x $EXAMPLES/threaded_echo ]] || die "no peers in $EXAMPLES (cargo build --release --examples)"
    say "echo: reactor vs tokio current_thread vs threaded std, reactor load -c $CONNS --duration ${DURATION}, $RUNS runs each, alternating"
    local ours tokio threaded
    start_server reactor-echo "$ECHO_OURS" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --echo "127.0.0.1:$ECHO_OURS" --udp-echo "127.0.0.1:$ECHO_OURS"
    ours=$LAST_PID
    start_server tokio-echo "$ECHO_TOKIO" "$EXAMPLES/tokio_echo" "127.0.0.1:$ECHO_TOKIO" "127.0.0.1:$ECHO_TOKIO"
    tokio=$LAST_PID
    start_server threaded-echo "$ECHO_THREADED" "$EXAMPLES/threaded_echo" "127.0.0.1:$ECHO_THREADED"
    threaded=$LAST_PID
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --echo 127.0.0.1:$ECHO_OURS --udp-echo 127.0.0.1:$ECHO_OURS"
    meta command "taskset -c $SERVER_CPU target/release/examples/tokio_echo 127.0.0.1:$ECHO_TOKIO 127.0.0.1:$ECHO_TOKIO"
    meta command "taskset -c $SERVER_CPU target/release/examples/threaded_echo 127.0.0.1:$ECHO_THREADED"
    meta command "taskset -c $CLIENT_CPU reactor load {echo|udp} --addr 127.0.0.1:PORT -c $CONNS [-d $ECHO_DEPTH | -s $ECHO_LARGE] --duration $DURATION --json"
    # row name | load arguments | servers
    local rows=(
        "64 B ping-pong|echo -c $CONNS -d 1 -s 64|reactor tokio threaded"
        "64 B depth $ECHO_DEPTH|echo -c $CONNS -d $ECHO_DEPTH -s 64|reactor tokio"
        "$((ECHO_LARGE / 1024)) KiB ping-pong|echo -c $CONNS -d 1 -s $ECHO_LARGE|reactor tokio"
        "UDP 64 B|udp -c $CONNS -d 1 -s 64|reactor tokio"
    )
    local -A pid_of=([reactor]=$ours [tokio]=$tokio [threaded]=$threaded)
    local -A port_of=([reactor]=$ECHO_OURS [tokio]=$ECHO_TOKIO [threaded]=$ECHO_THREADED)
    local run spec row args servers server
    local -a load_args
    for run in $(seq "$RUNS"); do
        for spec in "${rows[@]}"; do
            IFS='|' read -r row args servers <<<"$spec"
            read -r -a load_args <<<"$args"
            for server in $servers; do
                echo_load "$server" "${pid_of[$server]}" "${port_of[$server]}" "$run" "$row" "${load_args[@]}"
            done
        done
    done
    if [[ $SYSCALLS == 1 ]]; then
        pick_syscall_tool
        say "echo: system calls per request ($SYSCALL_TOOL), one run per row and server"
        meta command "perf stat -e raw_syscalls:sys_enter -p SERVER_PID (or strace -c -f -p), around one reactor load run per row"
        for spec in "${rows[@]}"; do
            IFS='|' read -r row args servers <<<"$spec"
            read -r -a load_args <<<"$args"
            for server in $servers; do
                echo_syscalls "$server" "${pid_of[$server]}" "${port_of[$server]}" "$row" "${load_args[@]}"
            done
        done
    fi
    stop_server "$ours"
    stop_server "$tokio"
    stop_server "$threaded"
}

# ------------------------------------------------------------------------------ post
# HTTP with a request body: POST /echo, the body sent back; the work GET / does not do (read a
# body, frame it, copy it out). nginx's peer is its echo module (echo_read_request_body;
# echo_request_body), which answers chunked (it sets no Content-Length) where we send a length:
# a few bytes more per reply for nginx. Both driven by `reactor load --post`, which checks
# every body byte for byte; 1 MiB is both servers' body limit, far above the largest row.
bench_post() {
    say "post: POST /echo, reactor vs nginx + echo module, reactor load --post -c $CONNS --duration ${DURATION}, $RUNS runs each, alternating"
    local ours peer run spec row args server got
    start_server reactor-post "$POST_OURS" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" --http "127.0.0.1:$POST_OURS"
    ours=$LAST_PID
    NGINX_ECHO=1 start_nginx "$POST_PEER"
    peer=$LAST_PID
    for server in "reactor $POST_OURS" "nginx $POST_PEER"; do
        got=$(curl -sS --max-time 5 --data-binary ping "http://127.0.0.1:${server#* }/echo") || true
        [[ $got == ping ]] || die "${server% *}: POST /echo answered '$got'"
    done
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --http 127.0.0.1:$POST_OURS"
    meta command "taskset -c $SERVER_CPU nginx -c nginx.conf   # 1 worker; load_module ngx_http_echo_module.so; location = /echo { echo_read_request_body; echo_request_body; }; client_body_buffer_size 1m"
    meta command "taskset -c $CLIENT_CPU reactor load http --post --size {64|1024|$ECHO_LARGE} --addr 127.0.0.1:PORT -c $CONNS --duration $DURATION --json"
    local rows=(
        "POST /echo 64 B|http --post -c $CONNS -s 64"
        "POST /echo 1 KiB|http --post -c $CONNS -s 1024"
        "POST /echo $((ECHO_LARGE / 1024)) KiB|http --post -c $CONNS -s $ECHO_LARGE"
    )
    local -A pid_of=([reactor]=$ours [nginx]=$peer)
    local -A port_of=([reactor]=$POST_OURS [nginx]=$POST_PEER)
    local -a load_args
    if ((WARMUP > 0)); then
        for server in reactor nginx; do
            client $((WARMUP + 30)) /dev/null "$REACTOR" load http --post -c "$CONNS" \
                --addr "127.0.0.1:${port_of[$server]}" --duration "$WARMUP"
        done
    fi
    for run in $(seq "$RUNS"); do
        for spec in "${rows[@]}"; do
            IFS='|' read -r row args <<<"$spec"
            read -r -a load_args <<<"$args"
            for server in reactor nginx; do
                REC_SECTION=post echo_load "$server" "${pid_of[$server]}" "${port_of[$server]}" "$run" "$row" "${load_args[@]}"
            done
        done
    done
    stop_server "$ours"
    stop_server "$peer"
}

# ------------------------------------------------------------------------------ tls
# One certificate for everything: P-256, self-signed, for 127.0.0.1 and localhost. CA:FALSE
# and serverAuth because the clients verify it (rustls, as `--ca`, refuses a CA certificate
# used as a server's own; curl --cacert).
make_cert() {
    local dir=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
        >"$dir/openssl.log" 2>&1 || {
        cat "$dir/openssl.log" >&2
        die "openssl could not make a certificate"
    }
}

# What an OpenSSL client (the library wrk uses, with the same defaults) negotiates with PORT.
tls_params() {
    timeout 5 openssl s_client -connect "127.0.0.1:$1" -brief </dev/null 2>&1 |
        awk -F': *' '/^Protocol version/ { p = $2 } /^Ciphersuite/ { c = $2 } /Temp Key|^Negotiated TLS1.3 group/ { k = $2 }
                     END { print (p ? p : "?") " " (c ? c : "?") (k ? ", key exchange " k : "") }'
}

bench_tls() {
    say "tls: echo 64 B plain vs TLS (reactor load -c $CONNS) and HTTPS GET / reactor vs nginx, TLS 1.3 (wrk -c$CONNS), $RUNS runs each, alternating"
    local dir=$TMP/tls cert key echo_pid ours peer run got
    mkdir -p "$dir"
    make_cert "$dir"
    cert=$dir/cert.pem key=$dir/key.pem
    local tls_args=(--tls-cert "$cert" --tls-key "$key")

    # Echo: one server, a plain and a TLS listener, the same load against each.
    start_server reactor-tls-echo "$TLS_ECHO_PLAIN" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --echo "127.0.0.1:$TLS_ECHO_PLAIN" --echo "tls://127.0.0.1:$TLS_ECHO_TLS" "${tls_args[@]}"
    echo_pid=$LAST_PID
    got=$(timeout 10 "$REACTOR" send --tls --ca "$cert" --addr "127.0.0.1:$TLS_ECHO_TLS" --timeout 2 ping 2>&1) || true
    [[ $got == ping* ]] || die "TLS echo on 127.0.0.1:$TLS_ECHO_TLS answered '$got'"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --echo 127.0.0.1:$TLS_ECHO_PLAIN --echo tls://127.0.0.1:$TLS_ECHO_TLS --tls-cert cert.pem --tls-key key.pem"
    meta command "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost ...   # cert.pem, key.pem"
    meta command "taskset -c $CLIENT_CPU reactor load echo --addr 127.0.0.1:PORT -c $CONNS -d 1 -s 64 [--tls --ca cert.pem] --duration $DURATION --json"
    local echo_args=(echo -c "$CONNS" -d 1 -s 64)
    local -a tls_load=(--tls --ca "$cert")
    for run in $(seq "$RUNS"); do
        REC_SECTION=tls-echo echo_load plain "$echo_pid" "$TLS_ECHO_PLAIN" "$run" "64 B ping-pong" "${echo_args[@]}"
        REC_SECTION=tls-echo echo_load TLS "$echo_pid" "$TLS_ECHO_TLS" "$run" "64 B ping-pong" "${echo_args[@]}" "${tls_load[@]}"
    done
    stop_server "$echo_pid"

    # HTTPS: reactor vs nginx (1 worker, TLS 1.3 only), the same certificate; wrk over https.
    start_server reactor-https "$HTTPS_OURS" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --http "tls://127.0.0.1:$HTTPS_OURS" "${tls_args[@]}"
    ours=$LAST_PID
    start_nginx "$HTTPS_PEER" "$cert" "$key"
    peer=$LAST_PID
    check_http reactor "$HTTPS_OURS" "$cert"
    check_http nginx "$HTTPS_PEER" "$cert"
    meta tls_reactor "$(tls_params "$HTTPS_OURS")"
    meta tls_nginx "$(tls_params "$HTTPS_PEER")"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --http tls://127.0.0.1:$HTTPS_OURS --tls-cert cert.pem --tls-key key.pem"
    meta command "taskset -c $SERVER_CPU nginx -c nginx.conf   # 1 worker, listen PORT ssl; ssl_protocols TLSv1.3; the same cert.pem/key.pem"
    meta command "taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency https://127.0.0.1:PORT/"
    if ((WARMUP > 0)); then
        client $((WARMUP + 30)) /dev/null wrk -t1 -c"$CONNS" -d"${WARMUP}s" "https://127.0.0.1:$HTTPS_OURS/"
        client $((WARMUP + 30)) /dev/null wrk -t1 -c"$CONNS" -d"${WARMUP}s" "https://127.0.0.1:$HTTPS_PEER/"
    fi
    for run in $(seq "$RUNS"); do
        wrk_run reactor "$ours" "$HTTPS_OURS" "$run" https "GET /" https
        wrk_run nginx "$peer" "$HTTPS_PEER" "$run" https "GET /" https
    done
    stop_server "$ours"
    stop_server "$peer"
}

# ------------------------------------------------------------------------------ overload
# overload_run PID RUN FLOOD: the light client (open loop, OVERLOAD_RATE req/s of GET / on one
# connection) for DURATION seconds; with FLOOD=1, the echo flood is started 1 s before it and
# runs DURATION + 2 s, so it covers the whole measured window. Both clients on CLIENT_CPU.
overload_run() {
    local pid=$1 run=$2 flood=$3 row="light HTTP, alone" tag=alone
    ((flood)) && row="light HTTP + echo flood" tag=flood
    local light=$TMP/overload-light-$tag-$run.json heavy=$TMP/overload-flood-$run.json flood_pid="" t0 t1
    t0=$(cpu_ticks "$pid")
    if ((flood)); then
        taskset -c "$CLIENT_CPU" timeout $((DURATION + 40)) "$REACTOR" load echo --addr "127.0.0.1:$OVL_ECHO" \
            --conns "$FLOOD_CONNS" --depth "$FLOOD_DEPTH" --size "$FLOOD_SIZE" --duration $((DURATION + 2)) \
            --json >"$heavy" 2>&1 &
        flood_pid=$!
        CLIENT_PIDS+=("$flood_pid")
        sleep 1
    fi
    local ok=1
    client $((DURATION + 30)) "$light" "$REACTOR" load http --addr "127.0.0.1:$OVL_HTTP" --conns 1 \
        --rate "$OVERLOAD_RATE" --duration "$DURATION" --json || ok=0
    if [[ -n $flood_pid ]]; then
        wait "$flood_pid" 2>/dev/null || warn "the echo flood exited with an error (run $run): $(tail -3 "$heavy")"
        untrack "$flood_pid"
    fi
    t1=$(cpu_ticks "$pid")
    if ((!ok)); then
        warn "the light client failed ($row, run $run):"
        tail -5 "$light" >&2
        return 0
    fi
    local rps p50 p99 p999 up99 completed errors
    IFS=$'\t' read -r rps p50 p99 p999 up99 completed errors < <(load_json "$light" requests_per_sec \
        latency_p50_ms latency_p99_ms latency_p99_9_ms uncorrected_p99_ms completed errors) || {
        warn "could not parse the light client's output ($row, run $run)"
        return 0
    }
    ((errors == 0)) || warn "light client, $row, run $run: $errors errors (see $light)"
    # Server CPU over the whole run, as % of one core (the flood's 1 s lead included).
    local secs=$((DURATION + (flood ? 3 : 0)))
    local -a extra=("p50_ms=$p50" "p999_ms=$p999" "unc_p99_ms=$up99"
        "cpu_pct=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.0f", t * 100 / hz / s }')")
    local flood_note=""
    if ((flood)); then
        local frps fmb ferr
        IFS=$'\t' read -r frps fmb ferr < <(load_json "$heavy" requests_per_sec mb_in_per_sec errors) || {
            frps=0 fmb=0 ferr=-1
        }
        extra+=("flood_rps=$frps" "flood_mb_s=$fmb" "flood_errors=$ferr")
        flood_note=$(printf '  flood %8.0f req/s %7.1f MB/s' "$frps" "$fmb")
    fi
    record overload "$row" reactor "$run" "$rps" "$p99" 0 "$completed" "$errors" "${extra[@]}"
    printf '    %-24s run %d: %7.0f req/s  p50 %6.3f  p99 %7.3f  p99.9 %7.3f ms (corrected)%s\n' \
        "$row" "$run" "$rps" "$p50" "$p99" "$p999" "$flood_note" >&2
}

bench_overload() {
    say "overload: GET / at $OVERLOAD_RATE req/s on 1 connection (open loop), alone vs while $FLOOD_CONNS echo connections flood another listener (depth $FLOOD_DEPTH, $FLOOD_SIZE B), $RUNS runs each, alternating"
    local pid run
    start_server reactor-overload "$OVL_HTTP" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --echo "127.0.0.1:$OVL_ECHO" --http "127.0.0.1:$OVL_HTTP"
    pid=$LAST_PID
    check_http reactor "$OVL_HTTP"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --echo 127.0.0.1:$OVL_ECHO --http 127.0.0.1:$OVL_HTTP"
    meta command "taskset -c $CLIENT_CPU reactor load http --addr 127.0.0.1:$OVL_HTTP --conns 1 --rate $OVERLOAD_RATE --duration $DURATION --json   # the light client"
    meta command "taskset -c $CLIENT_CPU reactor load echo --addr 127.0.0.1:$OVL_ECHO --conns $FLOOD_CONNS --depth $FLOOD_DEPTH --size $FLOOD_SIZE --duration $((DURATION + 2)) --json   # the flood, started 1 s before the light client"
    for run in $(seq "$RUNS"); do
        overload_run "$pid" "$run" 0
        overload_run "$pid" "$run" 1
    done
    stop_server "$pid"
}

# ------------------------------------------------------------------------------ reactors
# --reactors 1 vs 2, the same client load. One reactor is measured as in every other section
# (server on SERVER_CPU, client on CLIENT_CPU); two reactors need both cores, so that server
# and its client are given both (taskset -c SERVER_CPU,CLIENT_CPU) and the kernel schedules
# the two reactor threads and the client among them. SPREAD=1: the connections each reactor
# holds are read halfway through each run (conn_spread).
bench_reactors() {
    local both="$SERVER_CPU,$CLIENT_CPU"
    say "reactors: --reactors 1 (core $SERVER_CPU, client core $CLIENT_CPU) vs 2 (server and client on cores $both): echo 64 B and HTTP GET /, $CONNS connections, $RUNS runs each, alternating"
    local one two run
    start_server reactor-r1 "$RX1_HTTP" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --echo "127.0.0.1:$RX1_ECHO" --http "127.0.0.1:$RX1_HTTP" --reactors 1
    one=$LAST_PID
    start_server_on "$both" reactor-r2 "$RX2_HTTP" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --echo "127.0.0.1:$RX2_ECHO" --http "127.0.0.1:$RX2_HTTP" --reactors 2
    two=$LAST_PID
    check_http "reactor (1 reactor)" "$RX1_HTTP"
    check_http "reactor (2 reactors)" "$RX2_HTTP"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --echo 127.0.0.1:$RX1_ECHO --http 127.0.0.1:$RX1_HTTP --reactors 1"
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $both reactor serve --echo 127.0.0.1:$RX2_ECHO --http 127.0.0.1:$RX2_HTTP --reactors 2"
    meta command "taskset -c {$CLIENT_CPU|$both} reactor load echo --addr 127.0.0.1:PORT -c $CONNS -d 1 -s 64 --duration $DURATION --json   # client on $CLIENT_CPU against 1 reactor, on $both against 2"
    meta command "taskset -c {$CLIENT_CPU|$both} wrk -t1 -c$CONNS -d${DURATION}s --latency http://127.0.0.1:PORT/"
    meta command "connections per reactor: established sockets on the port registered in each of the server's epoll instances (/proc/PID/fdinfo), read halfway through each run"
    if ((WARMUP > 0)); then
        client $((WARMUP + 30)) /dev/null wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$RX1_HTTP/"
        client_on "$both" $((WARMUP + 30)) /dev/null wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$RX2_HTTP/"
    fi
    local SPREAD=1 REC_SECTION=reactors CLIENT_PIN
    local echo_args=(echo -c "$CONNS" -d 1 -s 64)
    for run in $(seq "$RUNS"); do
        CLIENT_PIN=$CLIENT_CPU
        echo_load "1 reactor" "$one" "$RX1_ECHO" "$run" "echo 64 B ping-pong" "${echo_args[@]}"
        CLIENT_PIN=$both
        echo_load "2 reactors" "$two" "$RX2_ECHO" "$run" "echo 64 B ping-pong" "${echo_args[@]}"
        CLIENT_PIN=$CLIENT_CPU
        wrk_run "1 reactor" "$one" "$RX1_HTTP" "$run" reactors "HTTP GET /" http
        CLIENT_PIN=$both
        wrk_run "2 reactors" "$two" "$RX2_HTTP" "$run" reactors "HTTP GET /" http
    done
    stop_server "$one"
    stop_server "$two"
}

# ------------------------------------------------------------------------------ client
# Is the load generator what limits the echo rows (issue #8)? One `reactor serve --echo` on
# SERVER_CPU, driven in turn by `reactor load echo` and by examples/tokio_load.rs (a tokio
# current_thread client that checks every byte the same way), the same settings, both on
# CLIENT_CPU. Ours must get at least as many requests per second out of the same server.
# Server and client CPU (% of one core) show which side was the limit: a client near 100%
# with the server below it means the client is the bottleneck.
bench_client() {
    [[ -x $EXAMPLES/tokio_load ]] || die "no $EXAMPLES/tokio_load (cargo build --release --example tokio_load)"
    say "client: reactor load vs tokio_load driving one reactor serve --echo, -c $CONNS, 64 B, depth 1 and $ECHO_DEPTH, $RUNS runs each, alternating"
    local pid run spec row args
    start_server reactor-client-echo "$CLIENT_ECHO" env RUST_LOG="$REACTOR_LOG" "${SERVE[@]}" \
        --echo "127.0.0.1:$CLIENT_ECHO"
    pid=$LAST_PID
    meta command "RUST_LOG=$REACTOR_LOG taskset -c $SERVER_CPU reactor serve --echo 127.0.0.1:$CLIENT_ECHO"
    meta command "taskset -c $CLIENT_CPU reactor load echo --addr 127.0.0.1:$CLIENT_ECHO -c $CONNS -d {1|$ECHO_DEPTH} -s 64 --duration $DURATION --json"
    meta command "taskset -c $CLIENT_CPU target/release/examples/tokio_load 127.0.0.1:$CLIENT_ECHO -c $CONNS -d {1|$ECHO_DEPTH} -s 64 --duration $DURATION"
    # The same server process for both clients, so the clients are all that differs. Records
    # name the client in the server column: "reactor load" is ours, "tokio_load" the peer.
    if ((WARMUP > 0)); then
        # Unrecorded: otherwise the first client of run 1 (always ours) meets a cold server.
        client $((WARMUP + 30)) /dev/null "$REACTOR" load echo --addr "127.0.0.1:$CLIENT_ECHO" -c "$CONNS" \
            --duration "$WARMUP"
    fi
    local REC_SECTION=client CPU_PCT=1
    local rows=(
        "64 B ping-pong|-c $CONNS -d 1 -s 64"
        "64 B depth $ECHO_DEPTH|-c $CONNS -d $ECHO_DEPTH -s 64"
    )
    local -a load_args
    for run in $(seq "$RUNS"); do
        for spec in "${rows[@]}"; do
            IFS='|' read -r row args <<<"$spec"
            read -r -a load_args <<<"$args"
            echo_load "reactor load" "$pid" "$CLIENT_ECHO" "$run" "$row" echo "${load_args[@]}"
            LOAD_PEER=$EXAMPLES/tokio_load echo_load tokio_load "$pid" "$CLIENT_ECHO" "$run" "$row" "${load_args[@]}"
        done
    done
    stop_server "$pid"
}

# ------------------------------------------------------------------------------ main
main() {
    need_tools
    (($(nproc) >= 2)) || warn "fewer than 2 CPUs: server and client will share a core"
    [[ $RUNS -ge 5 ]] || warn "RUNS=$RUNS: fewer than 5 runs per row is a smoke run, not a result"

    say "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    if [[ " $SECTIONS " == *" echo "* ]]; then
        # The echo peers are examples (tokio is a dev-dependency): built with the same profile.
        (cd "$ROOT" && cargo build --release --quiet --example tokio_echo --example threaded_echo)
    fi
    if [[ " $SECTIONS " == *" client "* ]]; then
        (cd "$ROOT" && cargo build --release --quiet --example tokio_load)
    fi
    [[ -x $REACTOR ]] || die "no binary at $REACTOR"

    TMP=$(mktemp -d -t reactor-compare.XXXXXX)
    : >"$TMP/results.tsv"
    : >"$TMP/meta.tsv"

    # 10,000 idle connections need 10,000 descriptors in the server and in the client. Servers
    # and clients inherit this limit. Root may raise the hard limit too.
    local want=$((MEM_CONNS + 1024))
    if (($(ulimit -Hn) < want)); then ulimit -Hn "$want" 2>/dev/null || true; fi
    ulimit -n "$(($(ulimit -Hn) < want ? $(ulimit -Hn) : want))"
    (($(ulimit -n) >= want)) || warn "ulimit -n is $(ulimit -n); $MEM_CONNS idle connections may not fit"

    meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
    meta cpu "$(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }')"
    meta cores "$(nproc)"
    meta kernel "$(uname -r)"
    meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
    meta rustc "$(rustc --version)"
    meta reactor "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (dirty)')"
    meta nginx "$(nginx -v 2>&1 | sed 's/^nginx version: nginx\///')"
    meta redis "$(redis-server --version | awk '{ print $3 }' | sed 's/^v=//')"
    meta redis_benchmark "$(redis-benchmark --version | awk '{ print $2 }')"
    meta wrk "$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
    meta tokio "$(awk '/^name = "tokio"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock")"
    meta settings "RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS KV_TESTS=$KV_TESTS KV_PIPELINE=$KV_PIPELINE KV_REQUESTS=$KV_REQUESTS KV_REQUESTS_PIPELINED=$KV_REQUESTS_PIPELINED MEM_CONNS=$MEM_CONNS ECHO_DEPTH=$ECHO_DEPTH ECHO_LARGE=$ECHO_LARGE OVERLOAD_RATE=$OVERLOAD_RATE FLOOD_CONNS=$FLOOD_CONNS FLOOD_DEPTH=$FLOOD_DEPTH FLOOD_SIZE=$FLOOD_SIZE${REACTOR_ARGS:+ REACTOR_ARGS=\"$REACTOR_ARGS\"}"
    meta pinning "servers: taskset -c $SERVER_CPU; clients: taskset -c $CLIENT_CPU"
    meta note "$NOTE"

    local section
    for section in $SECTIONS; do
        case $section in
            http) bench_http ;;
            kv) bench_kv ;;
            memory) bench_memory ;;
            echo) bench_echo ;;
            tls) bench_tls ;;
            overload) bench_overload ;;
            reactors) bench_reactors ;;
            client) bench_client ;;
            post) bench_post ;;
            *) die "unknown section '$section' (http, kv, memory, echo, tls, overload, reactors, client, post)" ;;
        esac
    done
    meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

    local args=(--results "$TMP/results.tsv" --meta "$TMP/meta.tsv")
    if [[ $UPDATE_DOCS == 1 ]]; then
        mkdir -p "$ROOT/docs/img" "$ROOT/docs/data"
        cp "$TMP/results.tsv" "$ROOT/docs/data/compare-results.tsv"
        cp "$TMP/meta.tsv" "$ROOT/docs/data/compare-meta.tsv"
        args+=(--doc "$ROOT/docs/benchmarks.md" --svg "$ROOT/docs/img/compare.svg")
    fi
    python3 "$ROOT/scripts/compare_report.py" "${args[@]}"
}

main "$@"
