#!/usr/bin/env bash
# benches/abuse.sh: Portico's default `[limits]` under real attack tools, with
# a polite client measuring what an honest phone gets meanwhile.
#
# What it does, in order:
#   1. `cargo build --release`; a throwaway self-signed certificate for
#      portal.test (ECDSA P-256, 90 days like a Let's Encrypt one) in a temp
#      dir.
#   2. Starts Portico with a plain listener, a `[tls]` listener, backend
#      `none`, state and logs in the temp dir, and NO `[limits]` section: the
#      defaults an operator gets (32 connections per client, 20 requests/s per
#      client with a burst of 60, 2000/s in all, 10 s to send a request head,
#      10 s for a TLS handshake). Checks that the probe answers 302, the https
#      splash 200 and the plain-http splash 302 to https.
#   3. Five phases, one after the other, each ~$ATTACK_SECS s, with the polite
#      client running throughout each:
#        baseline   no attack;
#        slowloris  slowhttptest -H: 500 connections sending headers that
#                   never end (a few bytes every 10 s);
#        slow body  slowhttptest -B (R-U-Dead-Yet): 500 POSTs to `/` (the
#                   Connect form) announcing 8 KiB and sending ~10 bytes every
#                   10 s;
#        flood      wrk -t1 -c200 at the probe URL as fast as it can;
#        testssl    testssl against the TLS listener (about a minute here; add
#                   `--fast` to its line below if a slower machine needs it).
#      Every attacker is 127.0.0.1 (slowhttptest cannot choose its source
#      address); the polite client is 127.0.0.2 (`curl --interface`), so the
#      per-client limits single out the attacker, as they would a hostile
#      phone in the hall.
#   4. The polite client: one request every 100 ms, alternating the probe
#      (plain http, `Host: connectivitycheck.gstatic.com`, answered 302 to the
#      portal) and the splash over https (`--cacert`, `--resolve`), each a new
#      connection as a phone's would be, 5 s timeout. Its p50/p99 are over
#      every request it made (a failed one counts with the time it took); an
#      error is a curl failure or a status other than 2xx/3xx (a 429 is one).
#      At 10 requests/s it stays well inside its own rate limit. A phase
#      lasts at least ATTACK_SECS even when Portico ends the attack sooner.
#   5. After each phase, reads `/metrics` from the admin listener: the rise of
#      `portico_rejected_total` by reason and of
#      `portico_tls_handshake_failures_total` during that phase.
#   6. Prints one markdown table (attack, polite p50/p99/errors, what the
#      attacker got, Portico's rejections), testssl's findings above INFO
#      (id, severity, text), per phase the CPU pressure and Portico's own CPU
#      time, its peak RSS, and the tools' versions.
#
# Noise: the polite client's latencies are a few milliseconds; another busy
# process on the machine (a fuzzer, a compile) moves them more than any
# attack here. The CPU-pressure line (/proc/pressure/cpu "some": share of the
# phase in which some task waited for a CPU) says how disturbed each phase
# was; Portico is not pinned to a core, so it competes like a real service.
#
# Usage:   benches/abuse.sh            (from anywhere; it finds the repo)
# Env:     ATTACK_SECS=30 (length of the baseline and of each attack)
# Needs:   cargo, curl, openssl, jq, wrk, slowhttptest, testssl (Debian
#          package testssl.sh), timeout (coreutils), bash 5. It installs
#          nothing and does not need root.
# Time:    about 4 minutes after the build (testssl takes 1-1.5 of them);
#          every tool runs under `timeout`, so the whole stays under 6.
# Traffic: 127.0.0.1 and 127.0.0.2 only. Everything it starts is stopped, and
#          its temp dir removed, on exit, failure or Ctrl-C.

set -euo pipefail

ATTACK_SECS=${ATTACK_SECS:-30}
PROBE_HOST=connectivitycheck.gstatic.com
PROBE_PATH=/generate_204
PORTAL_HOST=portal.test
POLITE_IP=127.0.0.2
POLITE_TIMEOUT=5
POLITE_TICK_US=100000

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# die, note, need, on_exit, stop, alive, run_portico, build_release,
# free_port, proc_ticks, cpu_share, psi_share, disturbed, now_us: shared
# with the other scripts.
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

# ---- prerequisites ---------------------------------------------------------

need "apt-get install -y slowhttptest testssl.sh wrk curl openssl jq" slowhttptest testssl wrk curl openssl jq
need "apt-get install -y coreutils" timeout
need "https://rustup.rs" cargo
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 or later (for EPOCHREALTIME)"
if ! [[ $ATTACK_SECS =~ ^[0-9]+$ ]] || ((ATTACK_SECS < 5 || ATTACK_SECS > 60)); then
    die "ATTACK_SECS must be a number from 5 to 60, got '$ATTACK_SECS'"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-abuse.XXXXXX")
PORTICO_PID=
ATTACK_PID=
POLITE_PID=

# Stops everything this script started. An attacker runs under `timeout`,
# which passes `stop`'s signal on to its whole process group (testssl's
# openssl children included).
cleanup() {
    stop "$POLITE_PID"
    stop "$ATTACK_PID"
    stop "$PORTICO_PID"
}
on_exit cleanup

portico_alive() { alive "$PORTICO_PID" Portico "$1" "$TMP/portico.log"; }

# ---- build, certificate, config -------------------------------------------

build_release

free_port P_PORT
free_port T_PORT
free_port A_PORT
mkdir -p "$TMP/state"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj "/CN=$PORTAL_HOST" -addext "subjectAltName=DNS:$PORTAL_HOST" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>"$TMP/openssl.log" \
    || die "openssl could not make a certificate: $(cat "$TMP/openssl.log")"

# No [limits] section on purpose: this measures the defaults.
cat >"$TMP/portico.toml" <<EOF
[venue]
name = "Abuse Bench"
kind = "station"

[portal]
listen = "127.0.0.1:$P_PORT"
public_url = "https://$PORTAL_HOST:$T_PORT/"

[tls]
listen = "127.0.0.1:$T_PORT"
cert = "$TMP/cert.pem"
key = "$TMP/key.pem"

[firewall]
backend = "none"

[state]
dir = "$TMP/state"

[admin]
listen = "127.0.0.1:$A_PORT"
EOF

echo "== starting Portico: http 127.0.0.1:$P_PORT, https 127.0.0.1:$T_PORT, admin 127.0.0.1:$A_PORT" >&2
ADMIN=http://127.0.0.1:$A_PORT
run_portico PORTICO_PID Portico "$ADMIN/healthz" "$TMP/portico.log" "$PORTICO" run --config "$TMP/portico.toml"

PROBE_URL=http://127.0.0.1:$P_PORT$PROBE_PATH
SPLASH_URL=https://$PORTAL_HOST:$T_PORT/
PROBE_ARGS=(-H "Host: $PROBE_HOST" "$PROBE_URL")
SPLASH_ARGS=(--cacert "$TMP/cert.pem" --resolve "$PORTAL_HOST:$T_PORT:127.0.0.1" "$SPLASH_URL")

# What a phone sees, checked once before any attack.
code=$(curl -s -o /dev/null -m 5 --interface "$POLITE_IP" -w '%{http_code}' "${PROBE_ARGS[@]}") \
    || die "the probe failed from $POLITE_IP (curl: is 127.0.0.2 usable on lo here?)"
[[ $code == 302 ]] || die "the probe answered $code, not 302"
code=$(curl -s -o /dev/null -m 5 --interface "$POLITE_IP" -w '%{http_code}' "${SPLASH_ARGS[@]}") \
    || die "the https splash failed (curl exit $?)"
[[ $code == 200 ]] || die "the https splash answered $code, not 200"
redirect=$(curl -s -o /dev/null -m 5 --interface "$POLITE_IP" -w '%{http_code} %{redirect_url}' \
    -H "Host: $PORTAL_HOST" "http://127.0.0.1:$P_PORT/") || die "the plain-http splash failed"
[[ $redirect == "302 $SPLASH_URL" ]] || die "plain-http splash answered '$redirect', not '302 $SPLASH_URL'"

# ---- the polite client ------------------------------------------------------

# One request every POLITE_TICK_US, alternating probe and https splash, until
# the file $2 exists. Appends "kind http_code seconds curl_exit" lines to $1.
# A slow answer delays the next request (one phone, one request at a time)
# rather than piling up.
polite_loop() {
    local out=$1 stopfile=$2 kind=probe did line rc next now
    trap - EXIT INT TERM
    next=$(now_us)
    while [[ ! -e $stopfile ]]; do
        if [[ $kind == probe ]]; then
            line=$(curl -s -o /dev/null -m "$POLITE_TIMEOUT" --interface "$POLITE_IP" \
                -w '%{http_code} %{time_total}' "${PROBE_ARGS[@]}") && rc=0 || rc=$?
            did=PROBE kind=splash
        else
            line=$(curl -s -o /dev/null -m "$POLITE_TIMEOUT" --interface "$POLITE_IP" \
                -w '%{http_code} %{time_total}' "${SPLASH_ARGS[@]}") && rc=0 || rc=$?
            did=SPLASH kind=probe
        fi
        # curl prints nothing for -w when it could not even start.
        [[ -n $line ]] || line="000 0"
        echo "$did $line $rc" >>"$out"
        next=$((next + POLITE_TICK_US))
        now=$(now_us)
        if ((next > now)); then
            sleep "0.$(printf '%06d' $((next - now)))"
        else
            next=$now
        fi
    done
}

polite_start() {
    rm -f "$TMP/polite.stop"
    : >"$TMP/polite-$1.txt"
    polite_loop "$TMP/polite-$1.txt" "$TMP/polite.stop" &
    POLITE_PID=$!
}

# Lets the request in flight finish (bounded by its timeout), then stops.
polite_stop() {
    local i
    touch "$TMP/polite.stop"
    for ((i = 0; i < (POLITE_TIMEOUT + 2) * 10; i++)); do
        kill -0 "$POLITE_PID" 2>/dev/null || break
        sleep 0.1
    done
    stop "$POLITE_PID"
    POLITE_PID=
}

# "p50 p99 errors total error-detail", tab-separated, for one kind (PROBE or
# SPLASH) of a phase's polite log; times in ms, nearest-rank percentiles.
polite_stats() {
    awk -v kind="$2" '
        $1 == kind {
            n++; t[n] = $3 * 1000
            if ($4 != 0) { e++; why["curl exit " $4]++ }
            else if ($2 !~ /^[23]/) { e++; why["HTTP " $2]++ }
        }
        END {
            if (!n) { printf "-\t-\t0\t0\t\n"; exit }
            # insertion sort: a few hundred samples
            for (i = 2; i <= n; i++) { v = t[i]; for (j = i - 1; j >= 1 && t[j] > v; j--) t[j + 1] = t[j]; t[j + 1] = v }
            p50 = t[int((n * 50 + 99) / 100)]; p99 = t[int((n * 99 + 99) / 100)]
            d = ""
            for (k in why) d = d (d == "" ? "" : ", ") k " ×" why[k]
            printf "%.1f\t%.1f\t%d\t%d\t%s\n", p50, p99, e, n, d
        }' "$TMP/polite-$1.txt"
}

# ---- Portico's counters -----------------------------------------------------

REASONS=(client_connections client_rate global_rate)
# "client_connections client_rate global_rate tls_handshake_failures"
metrics_snapshot() {
    curl -s -m 5 "$ADMIN/metrics" | awk '
        /^portico_rejected_total\{/ { match($0, /reason="[a-z_]+"/); r[substr($0, RSTART + 8, RLENGTH - 9)] = $NF }
        /^portico_tls_handshake_failures_total/ { tls = $NF }
        END { printf "%d %d %d %d\n", r["client_connections"], r["client_rate"], r["global_rate"], tls }'
}

# The rise of each counter between two snapshots, as a table cell.
metrics_delta() {
    local -a a b
    local i cell=
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    for i in 0 1 2; do
        ((b[i] - a[i] == 0)) || cell+="${REASONS[i]} +$((b[i] - a[i])), "
    done
    [[ -n $cell ]] || cell="no rejections, "
    echo "${cell}TLS handshake failures +$((b[3] - a[3]))"
}

# ---- attacks ----------------------------------------------------------------

strip_ansi() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1"; }

# What slowhttptest saw. Its status blocks (and CSV rows) come once a few
# seconds, so the last one can predate the end: when Portico hangs up on
# every connection it stops with "No open connections left" and prints no
# status after that. Hence the exit line and the second it ended on.
slowhttptest_summary() {
    local out=$1 csv=$2 summary
    summary=$(strip_ansi "$out" | awk -F: '
        /^(pending|connected|error|closed|service available):/ {
            gsub(/^[ \t]+|[ \t]+$/, "", $2); v[$1] = $2
        }
        /^Test ended on/ { ended = $0; sub(/^Test ended on /, "", ended) }
        /^Exit status:/ { ex = $0; sub(/^Exit status:[ \t]*/, "", ex) }
        END {
            printf "last status: connected %s, closed %s, pending %s, error %s, service available %s; ended on %s: %s",
                v["connected"], v["closed"], v["pending"], v["error"], v["service available"], ended, ex
        }')
    if [[ -s $csv ]]; then
        summary="$(awk -F, 'NR > 1 { n++; if ($5 == 0) down++; if ($4 > peak) peak = $4 }
            END { printf "peak connected %d", peak }' "$csv"); $summary"
        summary+=$(awk -F, 'NR > 1 { n++; if ($5 == 0) down++ }
            END { printf "; its probe found the service down in %d of %d samples", down, n }' "$csv")
    fi
    echo "$summary"
}

# Runs "$@" under timeout as the current attacker, in the background so the
# cleanup trap can stop it; returns its exit status.
run_attack() {
    local limit=$1 out=$2 rc=0
    shift 2
    timeout "$limit" "$@" </dev/null >"$out" 2>&1 &
    ATTACK_PID=$!
    wait "$ATTACK_PID" || rc=$?
    ATTACK_PID=
    return "$rc"
}

cat >"$TMP/count.lua" <<'EOF'
-- Counts responses by status in each thread; done() sums them and prints
-- "status CODE N" lines, then wrk's socket errors and totals.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("statuses")) do total[code] = (total[code] or 0) + n end
    end
    for code, n in pairs(total) do io.write(string.format("status %d %d\n", code, n)) end
    local e = summary.errors
    io.write(string.format("errors connect %d read %d write %d timeout %d\n", e.connect, e.read, e.write, e.timeout))
    io.write(string.format("total %d %d\n", summary.requests, summary.duration))
end
EOF

flood_summary() {
    awk '
        $1 == "Requests/sec:" { rps = $2 }
        $1 == "status" { s[$2] = $3; n += $3 }
        $1 == "errors" { err = sprintf("socket errors: connect %s, read %s, write %s, timeout %s", $3, $5, $7, $9) }
        END {
            if (!n) { print "no responses (see wrk output)"; exit }
            printf "%.0f responses/s; 429 for %.1f%% of %d", rps, 100 * s[429] / n, n
            for (c in s) if (c != 429) printf "; %s ×%d", c, s[c]
            printf "; %s\n", err
        }' "$1"
}

declare -A P50 P99 ERRS GOT REJ PSI CPU
PHASES=(baseline slowloris slowbody flood testssl)
declare -A LABEL=(
    [baseline]="none (baseline)"
    [slowloris]="slowloris (slowhttptest -H, 500 conns)"
    [slowbody]="slow body / RUDY (slowhttptest -B, 500 conns)"
    [flood]="flood (wrk -t1 -c200, one address)"
    [testssl]="testssl (TLS listener)"
)

phase() {
    local name=$1 before after p0 p1 c0 c1 t0 t1 rc=0 probe splash
    echo "== $name (polite client on $POLITE_IP throughout)" >&2
    before=$(metrics_snapshot)
    c0=$(proc_ticks "$PORTICO_PID")
    p0=$(psi_us)
    t0=$(now_us)
    polite_start "$name"
    case $name in
        baseline)
            sleep "$ATTACK_SECS"
            GOT[$name]="-"
            ;;
        slowloris)
            run_attack $((ATTACK_SECS + 20)) "$TMP/slowloris.out" \
                slowhttptest -c 500 -H -i 10 -r 200 -t GET -u "http://127.0.0.1:$P_PORT/" \
                -x 24 -p 3 -l "$ATTACK_SECS" -g -o "$TMP/slowloris" || rc=$?
            GOT[$name]=$(slowhttptest_summary "$TMP/slowloris.out" "$TMP/slowloris.csv")
            ;;
        slowbody)
            run_attack $((ATTACK_SECS + 20)) "$TMP/slowbody.out" \
                slowhttptest -c 500 -B -i 10 -r 200 -s 8192 -t POST -u "http://127.0.0.1:$P_PORT/" \
                -x 10 -p 3 -l "$ATTACK_SECS" -g -o "$TMP/slowbody" || rc=$?
            GOT[$name]=$(slowhttptest_summary "$TMP/slowbody.out" "$TMP/slowbody.csv")
            ;;
        flood)
            run_attack $((ATTACK_SECS + 20)) "$TMP/flood.out" \
                wrk -t1 -c200 -d"${ATTACK_SECS}s" -s "$TMP/count.lua" -H "Host: $PROBE_HOST" "$PROBE_URL" || rc=$?
            GOT[$name]=$(flood_summary "$TMP/flood.out")
            ;;
        testssl)
            # About a minute on a 2-core VM; --fast is not needed (add it
            # here if a slower machine would push the script past 6 minutes).
            run_attack 200 "$TMP/testssl.out" \
                testssl --quiet --color 0 --warnings batch --ip 127.0.0.1 \
                --jsonfile-pretty "$TMP/testssl.json" "https://$PORTAL_HOST:$T_PORT/" || rc=$?
            t1=$(now_us)
            GOT[$name]="offers $(testssl_protocols), $(grep -c '"id"' "$TMP/testssl.json" 2>/dev/null || true) checks in $(((t1 - t0) / 1000000)) s; $(testssl_findings | grep -c '^- ' || true) findings above INFO (below)"
            ;;
    esac
    # An attack Portico ends early (every connection hung up on) still gets
    # a full phase, so each row's polite numbers cover the same time.
    local left=$((t0 + ATTACK_SECS * 1000000 - $(now_us)))
    ((left <= 0)) || sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
    polite_stop
    portico_alive "during $name"
    t1=$(now_us)
    p1=$(psi_us)
    c1=$(proc_ticks "$PORTICO_PID")
    after=$(metrics_snapshot)
    ((rc == 0)) || note "$name: the attacker exited with status $rc (124 = cut by timeout); output in its log"
    if ((rc != 0)) && [[ $name != testssl ]]; then
        note "$name output:"
        strip_ansi "$TMP/$name.out" | tail -n 15 >&2 || true
    fi
    IFS=$'\t' read -r -a probe <<<"$(polite_stats "$name" PROBE)"
    IFS=$'\t' read -r -a splash <<<"$(polite_stats "$name" SPLASH)"
    P50[$name]="http ${probe[0]} · https ${splash[0]} ms"
    P99[$name]="http ${probe[1]} · https ${splash[1]} ms"
    ERRS[$name]="$((probe[2] + splash[2])) of $((probe[3] + splash[3]))"
    [[ -z ${probe[4]:-} ]] || ERRS[$name]+="; http: ${probe[4]}"
    [[ -z ${splash[4]:-} ]] || ERRS[$name]+="; https: ${splash[4]}"
    REJ[$name]=$(metrics_delta "$before" "$after")
    CPU[$name]=$(cpu_share $((c1 - c0)) $((t1 - t0)))
    PSI[$name]=$(psi_share "$p0" "$p1" $((t1 - t0)))
    sleep 2 # let the attacker's sockets close before the next phase
}

# testssl's findings whose severity is not OK or INFO, one "- " line each.
# Findings about testssl's own client (its openssl build) are listed apart.
testssl_findings() {
    [[ -s $TMP/testssl.json ]] || { echo "(testssl wrote no JSON; see its exit status above)"; return 0; }
    jq -r '
        def above: select(has("severity") and has("id") and (.severity | IN("OK", "INFO") | not));
        ([.scanResult[]? | .. | objects | above]
            | map("- `\(.id)` **\(.severity)**: \(.finding)") | .[]),
        ([to_entries[] | select(.key | startswith("clientProblem")) | .value | .. | objects | above]
            | map("  (testssl client, not the server) `\(.id)` \(.severity): \(.finding)") | .[])
    ' "$TMP/testssl.json"
}

# The protocol versions testssl found offered, e.g. "TLS 1.2, TLS 1.3".
testssl_protocols() {
    [[ -s $TMP/testssl.json ]] || { echo "?"; return 0; }
    jq -r '[.scanResult[]?.protocols[]? | select(.id | test("^(SSLv|TLS)"))
            | select(.finding | test("^offered")) | .id
            | sub("^TLS1$"; "TLS 1.0") | sub("^TLS1_"; "TLS 1.")] | join(", ")' "$TMP/testssl.json"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for p in "${PHASES[@]}"; do
    phase "$p"
done
PEAK_KB=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$PORTICO_PID/status")

# ---- report -----------------------------------------------------------------

echo
echo "## Portico under attack (default [limits]; attacker 127.0.0.1, polite client $POLITE_IP; ${ATTACK_SECS} s each)"
echo
echo "| attack | polite p50 | polite p99 | polite errors | what the attacker got | Portico's rejections |"
echo "|---|---|---|---|---|---|"
for p in "${PHASES[@]}"; do
    echo "| ${LABEL[$p]} | ${P50[$p]} | ${P99[$p]} | ${ERRS[$p]} | ${GOT[$p]} | ${REJ[$p]} |"
done
echo
echo "Polite: every 100 ms, alternately GET $PROBE_PATH (Host: $PROBE_HOST, plain http, 302 expected)"
echo "and GET $SPLASH_URL (https, 200 expected), each on a new connection; errors = curl failure"
echo "or a status other than 2xx/3xx. Rejections: rise of portico_rejected_total by reason and"
echo "portico_tls_handshake_failures_total during the phase, read from /metrics."
echo "slowhttptest's own availability probe connects from 127.0.0.1, the attacker's address, so"
echo "it competes for the attacker's 32 per-client connections: \"down\" there means that address"
echo "was capped, not that the service was; the polite columns show what everyone else got."
echo
echo "## testssl findings above INFO"
echo
findings=$(testssl_findings)
if [[ -n $findings ]]; then echo "$findings"; else echo "none above INFO"; fi
echo
echo "## Conditions"
echo
noisy=
line="CPU pressure (share of the phase some task waited for a CPU):"
for p in "${PHASES[@]}"; do
    line+=" $p ${PSI[$p]},"
    if disturbed "${PSI[$p]}"; then noisy+=" $p"; fi
done
echo "${line%,}; load average before: $LOAD_BEFORE ($(nproc) CPUs)."
line="Portico's own CPU (user + system, % of one core):"
for p in "${PHASES[@]}"; do line+=" $p ${CPU[$p]},"; done
echo "${line%,}."
echo "Portico peak RSS (VmHWM) after all phases: $PEAK_KB kB."
if [[ -n $noisy ]]; then
    echo
    echo "WARNING: other work competed for the CPUs during:$noisy. Latencies there include"
    echo "waiting for a CPU, not only Portico's own work."
fi
echo
echo "Versions: slowhttptest $(slowhttptest -h 2>&1 | grep -oE 'version [0-9.]+' | head -n 1 | cut -d' ' -f2);" \
    "testssl $(testssl --version 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -oE 'testssl +[0-9][0-9.]*' | head -n 1 | awk '{ print $2 }');" \
    "$(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//' || true);" \
    "$(openssl version); curl $(curl --version | head -n 1 | cut -d' ' -f2); $("$PORTICO" --version)"
