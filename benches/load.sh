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
#   4. Starts nginx (worker_processes 1, access_log off, keep-alive on,
#      sendfile, tcp_nopush and open_file_cache as a static-file nginx would
#      be run), also pinned to CPU 0, on another loopback port, serving:
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
#      own. On a third port, "plain" nginx: the same splash file and
#      `return 302 URL;`, with nginx's own headers and 302 body, nothing
#      added: what a user comparing the two would run. The script prints
#      header and body sizes of all six responses and `cmp`s the bodies, so
#      you see how close they are.
#   5. Load: wrk pinned to CPU 1 (servers on CPU 0, so the client never steals
#      the servers' core), one target after the other: a warm-up run that is
#      thrown away, then the measured run, `wrk -t1 -c$CONNECTIONS
#      -d$DURATION --latency`, with the same request headers for every
#      server. Targets: the splash; the 302 on keep-alive connections
#      (Portico closes every connection it answered for a foreign host, so
#      wrk reconnects for each of its requests while nginx reuses them); and
#      the 302 one request per connection (`Connection: close` sent), as a
#      phone's probe arrives, every server paying for its connection.
#   6. Prints markdown tables: requests/s, p50 and p99 latency per target and
#      server; what bounded each run (server CPU, CPU per request, how busy
#      wrk's core was, CPU pressure; see "Around each measured run" below);
#      idle and peak RSS per server; a goal check; the binary's size; the
#      versions.
#
# Noise: on a shared machine (someone else's `cargo build` or test run) one
# run can swing 2x. The CPU-pressure column flags the rows where other work
# competed for a CPU; trust only runs where it stays near 0, and compare
# "CPU µs/request", which moves least.
#
# Memory, and what each number is:
#   - Portico idle: VmRSS of the process after start-up, before any request
#     other than the readiness check. Peak: VmHWM after all the load.
#   - nginx idle: master VmRSS + worker VmRSS (two processes, summed), same
#     moment. Peak: the worker's VmHWM after the load (the worker is the one
#     serving; the master's does not move).
#
# The goals: at least 1.2x plain nginx's requests/s on the splash and 1.0x
# on the 302, ahead of nginx sending Portico's headers, and under 10 MiB RSS
# idle. The script reports; it does not fail when a goal is missed.
#
# Before and after a change: with BASELINE=<git revision>, Portico built at
# that revision (in a git worktree, its own target dir under target/) runs
# beside this tree's, same config, same CPU, and every Portico target is
# measured on both, each baseline run right after this tree's, so that both
# see the same machine. A last table gives the change in requests/s and in
# CPU µs/request.
#
# While fetching: with FETCH=1, a second Portico of this tree runs beside
# the first with a signed campaign bundle as its campaign, polled every
# second from a local https server (openssl s_server) that publishes the
# other of two campaigns every second, so every poll downloads, verifies,
# checks and swaps a campaign in; the splash is measured on it right after
# the first, and a last table gives the change.
#
# Usage:   benches/load.sh            (from anywhere; it finds the repo)
#          BASELINE=d23da5f benches/load.sh
#          FETCH=1 benches/load.sh
# Env:     DURATION=10s  CONNECTIONS=64  WARMUP=2s  BASELINE=  FETCH=
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
BASELINE=${BASELINE:-}
FETCH=${FETCH:-}
SERVER_CPU=0
CLIENT_CPU=1
ANDROID_UA='Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36'
PROBE_HOST=connectivitycheck.gstatic.com
PROBE_PATH=/generate_204

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# die, note, need, on_exit, stop, wait_for, run_portico, build_release,
# free_port, proc_ticks, cpu_share, psi_share, disturbed, now_us,
# change_table: shared with the other scripts.
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

# ---- prerequisites ---------------------------------------------------------

# Debian keeps nginx in /usr/sbin, which is not on an ordinary user's PATH.
NGINX=$(command -v nginx || true)
if [[ -z $NGINX && -x /usr/sbin/nginx ]]; then NGINX=/usr/sbin/nginx; fi
[[ -n $NGINX ]] || die "missing: nginx (apt-get install -y nginx-light)"
need "apt-get install -y wrk util-linux curl" wrk taskset curl
need "https://rustup.rs" cargo
[[ $(nproc --all) -ge 2 ]] || die "needs two CPUs (servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 or later (for EPOCHREALTIME)"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] || die "CONNECTIONS must be a number, got '$CONNECTIONS'"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
PORTICO_PID=
BASE_PID=
NGINX_PID=
FETCH_PID=
SERVER_PID=
PUBLISH_PID=

# Stops everything this script started, and removes its temp dir before
# the baseline's worktree (which is in it) is pruned.
cleanup() {
    stop "$NGINX_PID"
    stop "$PORTICO_PID"
    stop "$BASE_PID"
    stop "$FETCH_PID"
    stop "$PUBLISH_PID"
    stop "$SERVER_PID"
    rm -rf -- "$TMP"
    [[ -z $BASELINE ]] || git -C "$REPO" worktree prune
}
on_exit cleanup

# ---- helpers ----------------------------------------------------------------

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

# fetch BODY HEADERS STATUS WHAT CURL_ARGS...: one request with curl, its
# body and headers saved to the two files; dies unless it answered STATUS.
fetch() {
    local body=$1 head=$2 want=$3 what=$4 code
    shift 4
    code=$(curl -s -o "$body" -D "$head" -w '%{http_code}' "$@")
    [[ $code == "$want" ]] || die "$what answered $code, not $want"
}

# A header's value from a curl -D dump (first match, CR stripped).
header_value() {
    awk -v h="$(tr '[:upper:]' '[:lower:]' <<<"$2")" '
        { sub(/\r$/, "") }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == h) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }
    ' "$1"
}

# ---- build ------------------------------------------------------------------

build_release
BIN_BYTES=$(stat -c %s "$PORTICO")
if [[ -n $BASELINE ]]; then
    BASE_REV=$(git -C "$REPO" rev-parse --short "$BASELINE^{commit}") || die "BASELINE=$BASELINE is not a revision"
    echo "== cargo build --release of $BASE_REV (the baseline)" >&2
    git -C "$REPO" worktree add --detach --quiet "$TMP/baseline-src" "$BASE_REV" || die "git worktree add failed"
    (cd "$TMP/baseline-src" && CARGO_TARGET_DIR=$REPO/target/baseline cargo build --release --quiet) \
        || die "cargo build --release of $BASE_REV failed"
    BASE_BIN=$REPO/target/baseline/release/portico
fi

# ---- Portico ----------------------------------------------------------------

free_port P_PORT
free_port A_PORT
free_port N_PORT
free_port NP_PORT
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

# wrk is one client with many connections sending tens of thousands of
# requests a second: the per-client limits (rate and connections) and the
# global rate are lifted here, as nginx has none either.
[limits]
per_client_rps = 0
global_rps = 0
max_connections = 4096
per_client_connections = 4096
EOF

echo "== starting Portico on 127.0.0.1:$P_PORT (CPU $SERVER_CPU)" >&2
run_portico PORTICO_PID Portico "http://127.0.0.1:$A_PORT/healthz" - \
    taskset -c "$SERVER_CPU" "$PORTICO" run --config "$TMP/portico.toml"
sleep 0.5 # let start-up's transient allocations settle before reading RSS
P_IDLE_KB=$(status_kb "$PORTICO_PID" VmRSS)
if [[ -n $BASELINE ]]; then
    free_port B_PORT
    free_port BA_PORT
    mkdir -p "$TMP/base-state"
    sed -e "s/:$P_PORT/:$B_PORT/g" -e "s/:$A_PORT/:$BA_PORT/" -e "s|$TMP/state|$TMP/base-state|" \
        "$TMP/portico.toml" >"$TMP/baseline.toml"
    echo "== starting Portico $BASE_REV on 127.0.0.1:$B_PORT (CPU $SERVER_CPU)" >&2
    run_portico BASE_PID "Portico $BASE_REV" "http://127.0.0.1:$BA_PORT/healthz" - \
        taskset -c "$SERVER_CPU" "$BASE_BIN" run --config "$TMP/baseline.toml"
    B_BASE=http://127.0.0.1:$B_PORT
fi

if [[ -n $FETCH ]]; then
    # A second Portico of this tree whose campaign is a signed bundle it
    # fetches every second from a local https server (openssl s_server),
    # published anew every second, alternating two campaigns, so that
    # every poll downloads, verifies, checks and swaps one in.
    command -v openssl >/dev/null || die "FETCH=1 needs openssl"
    command -v minisign >/dev/null || die "FETCH=1 needs minisign (apt-get install minisign)"
    F=$TMP/fetch
    mkdir -p "$F/www" "$F/fetch-state"
    (
        cd "$F"
        openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca
        openssl req -new -nodes -newkey rsa:2048 -keyout srv.key -out srv.csr -subj /CN=127.0.0.1
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >srv.ext
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile srv.ext
        minisign -G -W -p bench.pub -s bench.key
        for n in a b; do
            cp -r "$REPO/assets/campaigns/bluezone" "campaign-$n"
            sed -i "s/^name = \"Bluezone\"/name = \"Bench $n\"/" "campaign-$n/campaign.toml"
            "$PORTICO" campaign pack "campaign-$n" --out "$n.tar"
            minisign -S -s bench.key -m "$n.tar"
        done
        cp a.tar www/live.tar && cp a.tar.minisig www/live.tar.minisig
    ) >"$TMP/fetch.log" 2>&1 || die "could not make the bundles (see $TMP/fetch.log)"
    free_port S_PORT
    free_port F_PORT
    free_port FA_PORT
    (cd "$F/www" && exec taskset -c "$CLIENT_CPU" openssl s_server -quiet -accept "127.0.0.1:$S_PORT" \
        -cert ../srv.pem -key ../srv.key -WWW) >>"$TMP/fetch.log" 2>&1 &
    SERVER_PID=$!
    # Publishes the other campaign every second.
    (
        cd "$F"
        while :; do
            for n in b a; do
                cp "$n.tar" www/live.tar.new && mv www/live.tar.new www/live.tar
                cp "$n.tar.minisig" www/live.tar.minisig.new && mv www/live.tar.minisig.new www/live.tar.minisig
                sleep 1
            done
        done
    ) &
    PUBLISH_PID=$!
    KEY=$(sed -n 2p "$F/bench.pub")
    sed -e "s/:$P_PORT/:$F_PORT/g" -e "s/:$A_PORT/:$FA_PORT/" -e "s|$TMP/state|$F/fetch-state|" \
        -e "s|^session = \"12h\"|session = \"12h\"\ncampaign = \"https://127.0.0.1:$S_PORT/live.tar\"\ncampaign_key = \"$KEY\"\ncampaign_ca = \"$F/ca.pem\"\ncampaign_poll = \"1s\"|" \
        "$TMP/portico.toml" >"$TMP/fetching.toml"
    echo "== starting Portico fetching a bundle every second on 127.0.0.1:$F_PORT (CPU $SERVER_CPU)" >&2
    run_portico FETCH_PID "the fetching Portico" "http://127.0.0.1:$FA_PORT/healthz" - \
        taskset -c "$SERVER_CPU" "$PORTICO" run --config "$TMP/fetching.toml"
    F_BASE=http://127.0.0.1:$F_PORT
fi

P_BASE=http://127.0.0.1:$P_PORT
N_BASE=http://127.0.0.1:$N_PORT
NP_BASE=http://127.0.0.1:$NP_PORT
SPLASH_HDRS=(-H 'Accept-Language: vi' -H "User-Agent: $ANDROID_UA")
PROBE_HDRS=(-H "Host: $PROBE_HOST")

# The bytes nginx will serve, straight from Portico.
fetch "$TMP/www/splash.html" "$TMP/portico-splash.h" 200 "Portico's splash" "${SPLASH_HDRS[@]}" "$P_BASE/"
fetch "$TMP/www/probe-302.html" "$TMP/portico-302.h" 302 "Portico's probe" "${PROBE_HDRS[@]}" "$P_BASE$PROBE_PATH"
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
    # What an nginx serving static files is normally given (Debian's stock
    # nginx.conf has the first two): without them it opens, reads and copies
    # the file on every request, and the comparison flatters Portico.
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16;
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

    # Plain nginx, as an operator would run it: the same splash file and
    # a 302 to the same Location, with nginx's own headers and its own 302
    # body, nothing added.
    server {
        listen 127.0.0.1:$NP_PORT default_server;
        root $TMP/www;
        location = / { try_files /splash.html =404; }
        location / { return 404; }
    }
    server {
        listen 127.0.0.1:$NP_PORT;
        server_name $PROBE_HOST;
        location = $PROBE_PATH { return 302 "$LOCATION"; }
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
N_MASTER_IDLE_KB=$(status_kb "$NGINX_PID" VmRSS)
N_WORKER_IDLE_KB=$(status_kb "$NGINX_WORKER" VmRSS)
N_IDLE_KB=$((N_MASTER_IDLE_KB + N_WORKER_IDLE_KB))

# ---- same bytes? ------------------------------------------------------------

fetch "$TMP/nginx-splash.b" "$TMP/nginx-splash.h" 200 "nginx's splash" "${SPLASH_HDRS[@]}" "$N_BASE/"
fetch "$TMP/nginx-302.b" "$TMP/nginx-302.h" 302 "nginx's probe" "${PROBE_HDRS[@]}" "$N_BASE$PROBE_PATH"
[[ $(header_value "$TMP/nginx-302.h" Location) == "$LOCATION" ]] \
    || die "nginx's 302 Location differs from Portico's ($LOCATION)"
cmp -s "$TMP/www/splash.html" "$TMP/nginx-splash.b" || die "splash bodies differ"
cmp -s "$TMP/www/probe-302.html" "$TMP/nginx-302.b" || die "302 bodies differ"
fetch "$TMP/plain-splash.b" "$TMP/plain-splash.h" 200 "plain nginx's splash" "${SPLASH_HDRS[@]}" "$NP_BASE/"
cmp -s "$TMP/www/splash.html" "$TMP/plain-splash.b" || die "plain nginx's splash body differs"
fetch "$TMP/plain-302.b" "$TMP/plain-302.h" 302 "plain nginx's probe" "${PROBE_HDRS[@]}" "$NP_BASE$PROBE_PATH"
[[ $(header_value "$TMP/plain-302.h" Location) == "$LOCATION" ]] \
    || die "plain nginx's 302 Location differs from Portico's ($LOCATION)"

echo
echo "## Responses compared (bodies checked byte for byte with cmp)"
echo
echo "| response | server | status | header bytes | body bytes |"
echo "|---|---|---|---|---|"
for row in "splash portico portico-splash.h www/splash.html" \
    "splash nginx nginx-splash.h nginx-splash.b" \
    "probe-302 portico portico-302.h www/probe-302.html" \
    "probe-302 nginx nginx-302.h nginx-302.b" \
    "splash plain plain-splash.h plain-splash.b" \
    "probe-302 plain plain-302.h plain-302.b"; do
    read -r what who h b <<<"$row"
    status=$(head -n 1 "$TMP/$h" | tr -d '\r' | cut -d' ' -f2)
    echo "| $what | $who | $status | $(stat -c %s "$TMP/$h") | $(stat -c %s "$TMP/$b") |"
done
echo
echo "Splash bodies identical: yes (all three). 302 bodies identical (Portico, nginx): yes;"
echo "plain nginx sends its own 302 body. Location: $LOCATION"
echo
echo "nginx: configured to send Portico's headers and 302 body; plain: nginx's own"
echo "default response, nothing added (the comparison a user would make)."

# ---- load -------------------------------------------------------------------

# Around each measured run the script also reads, so the numbers can be
# judged: the serving process's CPU time (Portico, or nginx's worker), which
# gives CPU per request, a figure that holds even when the rate is capped by
# wrk; how busy CPU 1 was (near 100% means wrk, not the server, set the pace);
# and the kernel's CPU pressure (/proc/pressure/cpu "some": the share of time
# a runnable task waited for a CPU). With one busy task per core that stays
# near 0; well above it means something else (a compile, a test run) was
# competing and the run is noise.

# "busy total" ticks of one CPU from /proc/stat.
cpu_ticks() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

declare -A RPS P50 P99 SRV_CPU US_PER_REQ WRK_CPU PSI
run_wrk() {
    local key=$1 url=$2 pid=$3
    shift 3
    local out t0 t1 s0 s1 c0 c1 p0 p1 requests
    echo "== wrk $key: warm-up $WARMUP, then $DURATION with $CONNECTIONS connections (CPU $CLIENT_CPU)" >&2
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$@" "$url" >/dev/null
    s0=$(proc_ticks "$pid")
    c0=$(cpu_ticks "$CLIENT_CPU")
    p0=$(psi_us)
    t0=$(now_us)
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url")
    t1=$(now_us)
    p1=$(psi_us)
    c1=$(cpu_ticks "$CLIENT_CPU")
    s1=$(proc_ticks "$pid")
    echo "$out" >"$TMP/wrk-$key.txt"
    RPS[$key]=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")
    P50[$key]=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    P99[$key]=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    requests=$(awk '$2 == "requests" && $3 == "in" { print $1 }' <<<"$out")
    [[ -n ${RPS[$key]} && -n ${P50[$key]} && -n ${P99[$key]} && -n $requests ]] \
        || die "could not parse wrk's output for $key:"$'\n'"$out"
    SRV_CPU[$key]=$(cpu_share $((s1 - s0)) $((t1 - t0)))
    US_PER_REQ[$key]=$(awk -v s=$((s1 - s0)) -v hz="$HZ" -v n="$requests" \
        'BEGIN { printf "%.1f", n ? s / hz * 1e6 / n : 0 }')
    WRK_CPU[$key]=$(awk -v a="$c0" -v b="$c1" \
        'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.0f%%", d ? 100 * (y[1] - x[1]) / d : 0 }')
    PSI[$key]=$(psi_share "$p0" "$p1" $((t1 - t0)))
    # 302 counts as "3xx" for wrk, so any line here is a real failure.
    if grep -E 'Socket errors|Non-2xx or 3xx' <<<"$out" >&2; then
        note "$key: the line above means some requests failed"
    fi
}
# The baseline's run of a target, right after this tree's.
baseline_wrk() {
    [[ -z $BASELINE ]] || run_wrk "baseline-$1" "$B_BASE$2" "$BASE_PID" "${@:3}"
}
run_wrk portico-splash "$P_BASE/" "$PORTICO_PID" "${SPLASH_HDRS[@]}"
baseline_wrk splash / "${SPLASH_HDRS[@]}"
if [[ -n $FETCH ]]; then
    run_wrk fetching-splash "$F_BASE/" "$FETCH_PID" "${SPLASH_HDRS[@]}"
    SWAPPED=$(curl -s "http://127.0.0.1:$FA_PORT/metrics" | awk -F' ' '/^portico_campaign_bundle_fetches_total\{result="new"\}/ { print $2 }')
fi
run_wrk nginx-splash "$N_BASE/" "$NGINX_WORKER" "${SPLASH_HDRS[@]}"
run_wrk portico-302 "$P_BASE$PROBE_PATH" "$PORTICO_PID" "${PROBE_HDRS[@]}"
baseline_wrk 302 "$PROBE_PATH" "${PROBE_HDRS[@]}"
run_wrk nginx-302 "$N_BASE$PROBE_PATH" "$NGINX_WORKER" "${PROBE_HDRS[@]}"
run_wrk plain-splash "$NP_BASE/" "$NGINX_WORKER" "${SPLASH_HDRS[@]}"
run_wrk plain-302 "$NP_BASE$PROBE_PATH" "$NGINX_WORKER" "${PROBE_HDRS[@]}"
# A phone's probe comes on a connection of its own, and Portico closes
# every connection it answered for a foreign host (a probe's included, so
# nothing opened before Connect outlives it). So the 302 is also measured
# one request per connection, every server closing after it.
CLOSE_HDRS=("${PROBE_HDRS[@]}" -H 'Connection: close')
run_wrk portico-302-per-conn "$P_BASE$PROBE_PATH" "$PORTICO_PID" "${CLOSE_HDRS[@]}"
baseline_wrk 302-per-conn "$PROBE_PATH" "${CLOSE_HDRS[@]}"
run_wrk nginx-302-per-conn "$N_BASE$PROBE_PATH" "$NGINX_WORKER" "${CLOSE_HDRS[@]}"
run_wrk plain-302-per-conn "$NP_BASE$PROBE_PATH" "$NGINX_WORKER" "${CLOSE_HDRS[@]}"

kill -0 "$PORTICO_PID" 2>/dev/null || die "Portico died under load"
kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died under load"
[[ -z $BASELINE ]] || kill -0 "$BASE_PID" 2>/dev/null || die "Portico $BASE_REV died under load"
SERVERS=(portico nginx plain)
[[ -z $BASELINE ]] || SERVERS+=(baseline)
P_PEAK_KB=$(status_kb "$PORTICO_PID" VmHWM)
N_PEAK_KB=$(status_kb "$NGINX_WORKER" VmHWM)

# ---- report -----------------------------------------------------------------

echo
echo "## Throughput and latency (wrk -t1 -c$CONNECTIONS -d$DURATION, servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"
echo
echo "| target | server | requests/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for target in splash 302 302-per-conn; do
    for server in "${SERVERS[@]}"; do
        key=$server-$target
        echo "| $target | $server | ${RPS[$key]} | ${P50[$key]} | ${P99[$key]} |"
    done
done
echo
echo "## What bounded each run"
echo
echo "| target | server | server CPU | CPU µs/request | CPU $CLIENT_CPU busy (wrk) | CPU pressure |"
echo "|---|---|---|---|---|---|"
noisy=
for target in splash 302 302-per-conn; do
    for server in "${SERVERS[@]}"; do
        key=$server-$target
        echo "| $target | $server | ${SRV_CPU[$key]} | ${US_PER_REQ[$key]} | ${WRK_CPU[$key]} | ${PSI[$key]} |"
        if disturbed "${PSI[$key]}"; then
            noisy+=" $key"
        fi
    done
done
echo
echo "server CPU: user + system time of the serving process (nginx: its worker), as % of"
echo "one core; near 100% means the server set the pace. CPU $CLIENT_CPU near 100% means wrk"
echo "was saturated too, so the faster server's lead is understated. CPU µs/request is"
echo "the fairest single figure. CPU pressure: share of the run in which some task"
echo "waited for a CPU (/proc/pressure/cpu); near 0 is a clean run."
if [[ -n $noisy ]]; then
    echo
    echo "WARNING: other work competed for the CPUs during:$noisy. Those rows are noise;"
    echo "rerun when the machine is quiet."
fi
echo
echo "## Memory"
echo
echo "| server | idle RSS | peak RSS |"
echo "|---|---|---|"
echo "| portico | $P_IDLE_KB kB ($(mib "$P_IDLE_KB")) | $P_PEAK_KB kB ($(mib "$P_PEAK_KB")) |"
echo "| nginx | $N_IDLE_KB kB ($(mib "$N_IDLE_KB")) | $N_PEAK_KB kB ($(mib "$N_PEAK_KB")) |"
echo
echo "Portico: idle = VmRSS after start-up, before load; peak = VmHWM after load."
echo "nginx: idle = master ($N_MASTER_IDLE_KB kB) + worker ($N_WORKER_IDLE_KB kB) VmRSS, same moment;"
echo "peak = worker VmHWM after load (so nginx's peak can read lower than its idle sum)."
echo
echo "## Goal check"
echo
# Against plain nginx: at least 1.2x on the splash and 1.0x on the 302;
# against nginx sending Portico's headers: ahead.
for row in "splash plain 1.2" "302 plain 1.0" "302-per-conn plain 1.0" \
    "splash nginx 1.0" "302 nginx 1.0" "302-per-conn nginx 1.0"; do
    read -r target server goal <<<"$row"
    awk -v t="$target" -v s="$server" -v goal="$goal" \
        -v p="${RPS[portico-$target]}" -v n="${RPS[$server-$target]}" \
        -v p50="${P50[portico-$target]}" -v n50="${P50[$server-$target]}" \
        -v p99="${P99[portico-$target]}" -v n99="${P99[$server-$target]}" '
        # wrk prints latencies as 850.00us, 1.23ms, 1.02s or 1.50m.
        function us(v,  x) {
            x = v + 0
            if (v ~ /us$/) return x
            if (v ~ /ms$/) return x * 1e3
            if (v ~ /m$/) return x * 60e6
            return x * 1e6
        }
        function verdict(win) { return win ? "ahead" : "BEHIND" }
        BEGIN {
            printf "- %s vs %s nginx: requests/s %.2fx (goal %.1fx: %s); p50 %s vs %s (%s); p99 %s vs %s (%s)\n",
                t, s, p / n, goal, (p >= goal * n ? "met" : "NOT met"),
                p50, n50, verdict(us(p50) < us(n50)),
                p99, n99, verdict(us(p99) < us(n99))
        }'
done
awk -v k="$P_IDLE_KB" 'BEGIN { printf "- Portico idle RSS %.1f MiB: %s 10 MiB\n", k / 1024, (k < 10240 ? "under" : "NOT under") }'
if [[ -n $noisy ]]; then
    echo "- (not a verdict: rows$noisy were disturbed by other work, see the warning above)"
fi
if [[ -n $FETCH ]]; then
    echo
    echo "## The splash while a bundle is fetched and swapped in every second"
    echo
    echo "splash ${RPS[portico-splash]} ${RPS[fetching-splash]}" \
        "${US_PER_REQ[portico-splash]} ${US_PER_REQ[fetching-splash]}" | change_table "not fetching" fetching
    echo
    echo "Bundles the fetching Portico swapped in since its start: ${SWAPPED:-?}."
fi
if [[ -n $BASELINE ]]; then
    echo
    echo "## This tree against $BASE_REV (the baseline), run by run"
    echo
    for target in splash 302 302-per-conn; do
        echo "$target ${RPS[baseline-$target]} ${RPS[portico-$target]}" \
            "${US_PER_REQ[baseline-$target]} ${US_PER_REQ[portico-$target]}"
    done | change_table "$BASE_REV" "this tree"
fi
echo
awk -v b="$BIN_BYTES" 'BEGIN { printf "Binary: target/release/portico is %d bytes (%.2f MiB)\n", b, b / 1048576 }'
echo "Versions: $("$NGINX" -v 2>&1 | tr -d '\n'); $(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//' || true); $("$PORTICO" --version)"
