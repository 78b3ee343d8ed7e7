#!/usr/bin/env bash
# benches/load.sh: Portico against nginx, serving the same bytes on loopback.
#
# What it does, in order:
#   1. `cargo build --release`, then reports the size of target/release/portico.
#   2. Starts Portico (`portico run --config <temp file>`, firewall backend
#      `none`, state in a temp dir, RUST_LOG=warn) pinned to CPU 0, and waits
#      (bounded) until it answers. Its idle RSS is read here, before any load.
#   3. Fetches from Portico the splash page (Accept-Language: vi, an Android
#      User-Agent) and a probe's 302 (Host: connectivitycheck.gstatic.com,
#      GET /generate_204): body, Location and the page headers.
#   4. Starts nginx (worker_processes 1, access_log off, keep-alive on), also
#      pinned to CPU 0, on another loopback port, serving:
#        - `location = /`: the identical splash file, with the Content-Type and
#          Cache-Control Portico sends, plus Portico's other page headers
#          (CSP, X-Content-Type-Options, Referrer-Policy, Content-Language)
#          copied from its response, so the two send similar header bytes;
#        - server_name connectivitycheck.gstatic.com, `location = /generate_204`:
#          a 302 with the same Location *and the same body bytes*. A plain
#          `return 302 URL;` would send nginx's own "302 Found" HTML; instead
#          the location returns an unused code (418) and
#          `error_page 418 =302 /probe-302.html` serves Portico's 302 body
#          with status 302, the Location added with `add_header ... always`.
#      nginx still adds Server, Last-Modified and Accept-Ranges headers of its
#      own; the script prints header and body sizes of all four responses and
#      `cmp`s the bodies, so you see how close the two are.
#   5. Load: wrk pinned to CPU 1 (servers on CPU 0, so the client never steals
#      the servers' core), one target after the other: a warm-up run that is
#      thrown away, then the measured run, `wrk -t1 -c$CONNECTIONS
#      -d$DURATION --latency`, with the same request headers for both servers.
#   6. Prints markdown tables: requests/s, p50 and p99 latency per target and
#      server; idle and peak RSS per server; the binary's size; the versions.
#
# Memory, and what each number is:
#   - Portico idle: VmRSS of the process after start-up, before any request
#     other than the readiness check. Peak: VmHWM after all the load.
#   - nginx idle: master VmRSS + worker VmRSS (two processes, summed), same
#     moment. Peak: the worker's VmHWM after the load (the worker is the one
#     serving; the master's does not move).
#
# The goal (from the issue): Portico beats nginx on requests/s and latency for
# both targets, and stays under 10 MiB RSS idle. The script reports; it does
# not fail when the goal is missed.
#
# Usage:   benches/load.sh            (from anywhere; it finds the repo)
# Env:     DURATION=10s  CONNECTIONS=64  WARMUP=2s
# Needs:   cargo, curl, nginx (Debian: nginx-light), wrk, taskset
#          (util-linux) and two CPUs. It installs nothing. It does not need
#          root; as root, nginx's workers are told to stay root (`user`)
#          because the files they serve are in a private temp dir.
# Traffic: 127.0.0.1 only. Everything it starts is stopped, and its temp dir
#          removed, on exit, failure or Ctrl-C.

set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
SERVER_CPU=0
CLIENT_CPU=1
ANDROID_UA='Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36'
PROBE_HOST=connectivitycheck.gstatic.com
PROBE_PATH=/generate_204

die() {
    echo "load.sh: $*" >&2
    exit 1
}
note() { echo "load.sh: $*" >&2; }

# ---- prerequisites ---------------------------------------------------------

# Debian keeps nginx in /usr/sbin, which is not on an ordinary user's PATH.
NGINX=$(command -v nginx || true)
if [[ -z $NGINX && -x /usr/sbin/nginx ]]; then NGINX=/usr/sbin/nginx; fi
missing=()
[[ -n $NGINX ]] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(taskset)
if ((${#missing[@]})); then
    echo "load.sh: missing: ${missing[*]}" >&2
    echo "apt-get install -y nginx-light wrk util-linux" >&2
    exit 1
fi
command -v curl >/dev/null || die "missing: curl (apt-get install -y curl)"
command -v cargo >/dev/null || die "missing: cargo (https://rustup.rs)"
[[ $(nproc --all) -ge 2 ]] || die "needs two CPUs (servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] || die "CONNECTIONS must be a number, got '$CONNECTIONS'"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
PORTICO_PID=
NGINX_PID=

# Stops one process: TERM, up to 5 s, then KILL. Only the pids we started.
stop() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop "$NGINX_PID"
    stop "$PORTICO_PID"
    rm -rf -- "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers ----------------------------------------------------------------

# A loopback TCP port nobody listens on, starting at a random point; bounded.
# (Racy in principle, as every "free port" check is; fine on a bench box.)
declare -A TAKEN=()
free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ -z ${TAKEN[$port]:-} ]] || continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            TAKEN[$port]=1
            echo "$port"
            return 0
        fi
    done
    die "no free loopback port found"
}

# A field (kB) of /proc/PID/status, e.g. VmRSS, VmHWM.
status_kb() {
    awk -v k="$2:" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status"
}

# The children of PID, from /proc/*/stat (no procps needed).
children_of() {
    local f stat rest ppid
    for f in /proc/[0-9]*/stat; do
        { stat=$(<"$f"); } 2>/dev/null || continue
        rest=${stat##*) }            # after the command name, which may hold spaces
        read -r _ ppid _ <<<"$rest"
        [[ $ppid == "$1" ]] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
    return 0
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# Waits (at most ~10 s) until URL answers with any HTTP status, while PID lives.
wait_for() {
    local url=$1 pid=$2 name=$3 i code
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (log: see above)"
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" || true)
        [[ $code != 000 ]] && return 0
        sleep 0.1
    done
    die "$name did not answer on $url within 10 s"
}

# A header's value from a curl -D dump (first match, CR stripped).
header_value() {
    awk -v h="$(tr '[:upper:]' '[:lower:]' <<<"$2")" '
        { sub(/\r$/, "") }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == h) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }
    ' "$1"
}

# ---- build ------------------------------------------------------------------

echo "== cargo build --release (in $REPO)" >&2
(cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
PORTICO=$REPO/target/release/portico
[[ -x $PORTICO ]] || die "no binary at $PORTICO"
BIN_BYTES=$(stat -c %s "$PORTICO")

# ---- Portico ----------------------------------------------------------------

P_PORT=$(free_port)
A_PORT=$(free_port)
N_PORT=$(free_port)
mkdir -p "$TMP/state" "$TMP/www" "$TMP/nginx/tmp"
cat >"$TMP/portico.toml" <<EOF
[venue]
name = "Bench Station"
kind = "station"

[portal]
listen = "127.0.0.1:$P_PORT"
public_url = "http://127.0.0.1:$P_PORT/"
session = "12h"

[firewall]
backend = "none"

[state]
dir = "$TMP/state"

[admin]
listen = "127.0.0.1:$A_PORT"
EOF

echo "== starting Portico on 127.0.0.1:$P_PORT (CPU $SERVER_CPU)" >&2
RUST_LOG=warn taskset -c "$SERVER_CPU" "$PORTICO" run --config "$TMP/portico.toml" &
PORTICO_PID=$!
wait_for "http://127.0.0.1:$A_PORT/healthz" "$PORTICO_PID" Portico
sleep 0.5 # let start-up's transient allocations settle before reading RSS
P_IDLE_KB=$(status_kb "$PORTICO_PID" VmRSS)

P_BASE=http://127.0.0.1:$P_PORT
N_BASE=http://127.0.0.1:$N_PORT
SPLASH_HDRS=(-H 'Accept-Language: vi' -H "User-Agent: $ANDROID_UA")
PROBE_HDRS=(-H "Host: $PROBE_HOST")

# The bytes nginx will serve, straight from Portico.
code=$(curl -s -o "$TMP/www/splash.html" -D "$TMP/portico-splash.h" -w '%{http_code}' \
    "${SPLASH_HDRS[@]}" "$P_BASE/")
[[ $code == 200 ]] || die "Portico's splash answered $code, not 200"
code=$(curl -s -o "$TMP/www/probe-302.html" -D "$TMP/portico-302.h" -w '%{http_code}' \
    "${PROBE_HDRS[@]}" "$P_BASE$PROBE_PATH")
[[ $code == 302 ]] || die "Portico's probe answered $code, not 302"
LOCATION=$(header_value "$TMP/portico-302.h" Location)
[[ -n $LOCATION ]] || die "Portico's 302 has no Location"

# ---- nginx ------------------------------------------------------------------

# nginx strings interpolate `$` and end at `"`: a value holding either is not
# copied (with a note) rather than mangled.
nginx_value() {
    if [[ $1 == *[\"\$\\]* ]]; then return 1; fi
    printf '"%s"' "$1"
}
[[ $LOCATION != *[\"\$\\]* ]] || die "Location '$LOCATION' cannot be written into nginx.conf"
PAGE_HEADERS=
for h in Content-Security-Policy X-Content-Type-Options Referrer-Policy Content-Language; do
    v=$(header_value "$TMP/portico-splash.h" "$h")
    [[ -n $v ]] || continue
    if q=$(nginx_value "$v"); then
        PAGE_HEADERS+="            add_header $h $q;"$'\n'
    else
        note "not copying $h to nginx: its value has a quote, \$ or backslash"
    fi
done
USER_LINE=
if [[ $(id -u) == 0 ]]; then
    # As root nginx would switch its worker to `nobody`, who cannot read the
    # private temp dir; keep the worker as the invoking user instead.
    USER_LINE="user $(id -un) $(id -gn);"
fi

cat >"$TMP/nginx/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    etag off;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/tmp;
    proxy_temp_path $TMP/nginx/tmp;
    fastcgi_temp_path $TMP/nginx/tmp;
    uwsgi_temp_path $TMP/nginx/tmp;
    scgi_temp_path $TMP/nginx/tmp;
    types { }
    default_type "text/html; charset=utf-8";

    server {
        listen 127.0.0.1:$N_PORT default_server;
        root $TMP/www;
        location = / {
            add_header Cache-Control no-store;
$PAGE_HEADERS            try_files /splash.html =404;
        }
        location / { return 404; }
    }

    # The probe: 302 with Portico's Location and Portico's 302 body.
    server {
        listen 127.0.0.1:$N_PORT;
        server_name $PROBE_HOST;
        root $TMP/www;
        error_page 418 =302 /probe-302.html;
        location = $PROBE_PATH { return 418; }
        location = /probe-302.html {
            internal;
            add_header Location "$LOCATION" always;
            add_header Cache-Control no-store always;
        }
        location / { return 404; }
    }
}
EOF

echo "== starting nginx on 127.0.0.1:$N_PORT (CPU $SERVER_CPU)" >&2
"$NGINX" -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
    || die "nginx rejected its config ($TMP/nginx/nginx.conf)"
taskset -c "$SERVER_CPU" "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" \
    -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_for "$N_BASE/" "$NGINX_PID" nginx
sleep 0.5
NGINX_WORKER=$(children_of "$NGINX_PID" | head -n 1)
[[ -n $NGINX_WORKER ]] || die "nginx has no worker process"
N_IDLE_KB=$(($(status_kb "$NGINX_PID" VmRSS) + $(status_kb "$NGINX_WORKER" VmRSS)))

# ---- same bytes? ------------------------------------------------------------

code=$(curl -s -o "$TMP/nginx-splash.b" -D "$TMP/nginx-splash.h" -w '%{http_code}' \
    "${SPLASH_HDRS[@]}" "$N_BASE/")
[[ $code == 200 ]] || die "nginx's splash answered $code, not 200"
code=$(curl -s -o "$TMP/nginx-302.b" -D "$TMP/nginx-302.h" -w '%{http_code}' \
    "${PROBE_HDRS[@]}" "$N_BASE$PROBE_PATH")
[[ $code == 302 ]] || die "nginx's probe answered $code, not 302"
[[ $(header_value "$TMP/nginx-302.h" Location) == "$LOCATION" ]] \
    || die "nginx's 302 Location differs from Portico's ($LOCATION)"
cmp -s "$TMP/www/splash.html" "$TMP/nginx-splash.b" || die "splash bodies differ"
cmp -s "$TMP/www/probe-302.html" "$TMP/nginx-302.b" || die "302 bodies differ"

echo
echo "## Responses compared (bodies checked byte for byte with cmp)"
echo
echo "| response | server | status | header bytes | body bytes |"
echo "|---|---|---|---|---|"
for row in "splash portico portico-splash.h www/splash.html" \
    "splash nginx nginx-splash.h nginx-splash.b" \
    "probe-302 portico portico-302.h www/probe-302.html" \
    "probe-302 nginx nginx-302.h nginx-302.b"; do
    read -r what who h b <<<"$row"
    status=$(head -n 1 "$TMP/$h" | tr -d '\r' | cut -d' ' -f2)
    echo "| $what | $who | $status | $(stat -c %s "$TMP/$h") | $(stat -c %s "$TMP/$b") |"
done
echo
echo "Splash bodies identical: yes. 302 bodies identical: yes. Location: $LOCATION"

# ---- load -------------------------------------------------------------------

declare -A RPS P50 P99
run_wrk() {
    local key=$1 url=$2
    shift 2
    local out
    echo "== wrk $key: warm-up $WARMUP, then $DURATION with $CONNECTIONS connections (CPU $CLIENT_CPU)" >&2
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" >/dev/null
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    echo "$out" >"$TMP/wrk-$key.txt"
    RPS[$key]=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")
    P50[$key]=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    P99[$key]=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    [[ -n ${RPS[$key]} && -n ${P50[$key]} && -n ${P99[$key]} ]] \
        || die "could not parse wrk's output for $key:"$'\n'"$out"
    # 302 counts as "3xx" for wrk, so any line here is a real failure.
    if grep -E 'Socket errors|Non-2xx or 3xx' <<<"$out" >&2; then
        note "$key: the line above means some requests failed"
    fi
}
run_wrk portico-splash "$P_BASE/" "${SPLASH_HDRS[@]}"
run_wrk nginx-splash "$N_BASE/" "${SPLASH_HDRS[@]}"
run_wrk portico-302 "$P_BASE$PROBE_PATH" "${PROBE_HDRS[@]}"
run_wrk nginx-302 "$N_BASE$PROBE_PATH" "${PROBE_HDRS[@]}"

kill -0 "$PORTICO_PID" 2>/dev/null || die "Portico died under load"
kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died under load"
P_PEAK_KB=$(status_kb "$PORTICO_PID" VmHWM)
N_PEAK_KB=$(status_kb "$NGINX_WORKER" VmHWM)

# ---- report -----------------------------------------------------------------

echo
echo "## Throughput and latency (wrk -t1 -c$CONNECTIONS -d$DURATION, servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
echo
echo "| target | server | requests/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for target in splash 302; do
    for server in portico nginx; do
        key=$server-$target
        echo "| $target | $server | ${RPS[$key]} | ${P50[$key]} | ${P99[$key]} |"
    done
done
echo
echo "## Memory"
echo
echo "| server | idle RSS | peak RSS |"
echo "|---|---|---|"
echo "| portico | $P_IDLE_KB kB ($(mib "$P_IDLE_KB")) | $P_PEAK_KB kB ($(mib "$P_PEAK_KB")) |"
echo "| nginx | $N_IDLE_KB kB ($(mib "$N_IDLE_KB")) | $N_PEAK_KB kB ($(mib "$N_PEAK_KB")) |"
echo
echo "Portico: idle = VmRSS after start-up, before load; peak = VmHWM after load."
echo "nginx: idle = master + worker VmRSS, same moment; peak = worker VmHWM after load."
echo
echo "## Goal check"
echo
for target in splash 302; do
    awk -v t="$target" -v p="${RPS[portico-$target]}" -v n="${RPS[nginx-$target]}" \
        'BEGIN { printf "- %s: Portico at %.0f%% of nginx requests/s (%s)\n", t, 100 * p / n, p > n ? "beats nginx" : "behind nginx" }'
done
awk -v k="$P_IDLE_KB" 'BEGIN { printf "- Portico idle RSS %.1f MiB: %s 10 MiB\n", k / 1024, k < 10240 ? "under" : "NOT under" }'
echo
awk -v b="$BIN_BYTES" 'BEGIN { printf "Binary: target/release/portico is %d bytes (%.2f MiB)\n", b, b / 1048576 }'
echo "Versions: $("$NGINX" -v 2>&1 | tr -d '\n'); $(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//' || true); $("$PORTICO" --version)"
