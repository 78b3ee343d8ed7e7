#!/usr/bin/env bash
# benches/fairuse.sh: what the nftables backend's per-device rate and walled
# garden do to real traffic, in a venue of network namespaces.
#
# The venue (IPv4 only, addresses only ever inside its own namespaces):
#   gateway   bridge br-lan 10.77.1.1/24 for the phones, wan0 10.77.2.1/24 to
#             the upstream, forwarding on; Portico runs here (`portico run`),
#             gating br-lan with its nftables table, as on a real gateway;
#   upstream  the "internet": 10.77.2.2 and 10.77.2.3 on one veth, iperf3
#             servers, a TCP listener on port 443 (busybox httpd) and, for
#             the garden, a dnsmasq that knows the garden's names;
#   phones    1-3 (granted) and a held one, each its own namespace and veth
#             (its own MAC, which is what Portico grants) in br-lan.
# Phones 1-3 are granted once by POSTing the splash's Connect form (`/`,
# answered 303); the grants live in the state dir and so survive every
# restart of Portico with another config below.
#
# What it measures, in order:
#   1. Per-device rate. Portico with `firewall.device_rate` "4mbit", then
#      "20mbit": phone 1 downloads alone (iperf3 -R), then phones 1-3 at the
#      same time, each from its own iperf3 server. Then
#      `device_upload_rate = "2mbit"` and phone 1 uploads alone. All of it
#      once per TCP congestion control in CCS (iperf3 -C sets the sender's,
#      the upstream's for a download): cubic, Linux's default, and bbr, which
#      many large senders use; one the kernel has not loaded is skipped (not
#      loaded). Each run is DURATION s after OMIT s that iperf3 leaves out
#      (the start, where the policer's full bucket and slow start overshoot);
#      a row is each device's Mbit/s as the receiver counted it, its ratio
#      to the rate (target: within ±15 %), and the sender's TCP
#      retransmits, which count the segments the policer dropped (also as a
#      share of those received). The veth links' RTT is tens of µs, far
#      below a real WAN's (10-100 ms), and TCP's reaction to drops scales
#      with the RTT: these rows say that the meter holds each device to its
#      rate, not how a download across a real WAN fares under it.
#   2. The CPU cost of the rate at line rate. Phone 1 downloads as fast as it
#      can (iperf3 -R, the first of CCS, DURATION s, nothing omitted) in three
#      configurations:
#        a  Portico's table, no rate keys;
#        b  `device_rate = "100gbit"`: the meter runs on every packet but
#           never limits, so b - a is the pure cost of the limiter;
#        c  no Portico table at all (Portico stopped, `portico firewall
#           remove`): plain forwarding, and no connection tracking either
#           (the table's `redirect` is what turns it on in the gateway), so
#           a - c includes conntrack's cost.
#      Alternated a,b,c,a,b,c,... ROUNDS times, since one run on a busy VM
#      can swing far; medians printed. CPU is the whole machine's busy time
#      from /proc/stat (user+nice+system+irq+softirq) over the transfer,
#      iperf3's own sender and receiver included (the same in a, b and c),
#      divided by the GB received. Steal time is shown as a noise sign.
#   3. The walled garden. Portico with `[walled_garden] hosts =
#      ["garden.bench.test"]`, ports [443]; the gateway's dnsmasq gets the
#      `nftset=` line `portico dhcp print` writes, and forwards bench.test to
#      the upstream's dnsmasq (`host-record`s: garden.bench.test and
#      t1..tN.garden.bench.test at 10.77.2.2, other.bench.test at 10.77.2.3).
#      From the held phone, GARDEN_TRIES times: the garden set is flushed,
#      a connect to 10.77.2.2:443 is checked to be refused, then a fresh name
#      (tK.garden.bench.test, never cached) is resolved through the gateway
#      (busybox nslookup -type=a), and TCP 443 to the address is tried again
#      and again (a bash /dev/tcp connect, no pause) until it connects: the time
#      from the answer arriving (nslookup returned) to the first successful
#      connect, and how many tries it took (1 = the address was in the set
#      before the phone had its answer). Then other.bench.test, not in the
#      garden, on the same upstream host: resolved, and its connects refused
#      for 2 s. Times are taken inside the phone's namespace with bash's
#      EPOCHREALTIME; their floor is a process exit (~1 ms).
# Then one table per part.
#
# Usage:   benches/fairuse.sh [--portico PATH]   (as root, from anywhere)
#          Without --portico it runs `cargo build --release` and uses
#          target/release/portico.
# Env:     DURATION=10 (s per iperf3 run)  OMIT=2  ROUNDS=3  GARDEN_TRIES=20
#          CCS="cubic bbr"
# Needs:   root (namespaces, nftables), iperf3, dnsmasq, busybox, curl, jq,
#          nft, ip (iproute2), bash 5. It installs nothing.
# Time:    about 4 minutes after the build (defaults; 3 min 45 s on a
#          2-core VM).
# Traffic: only between its own namespaces; the root namespace's links,
#          routes and firewall are never touched. Everything it starts
#          (namespaces, processes, temp dir) is removed on exit, failure or
#          Ctrl-C.

set -euo pipefail

DURATION=${DURATION:-10}
OMIT=${OMIT:-2}
ROUNDS=${ROUNDS:-3}
GARDEN_TRIES=${GARDEN_TRIES:-20}
CCS=${CCS:-cubic bbr}
TABLE=portico_bench
LAN_GW=10.77.1.1
WAN_GW=10.77.2.1
UP=10.77.2.2
UP_OTHER=10.77.2.3
GARDEN=garden.bench.test
OTHER=other.bench.test
PORTAL_PORT=8080
ADMIN=127.0.0.1:9090

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# die, note, need, on_exit, stop, run_portico, build_release, now_us,
# busy_ticks: shared with the other scripts.
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

usage() {
    echo "usage: benches/fairuse.sh [--portico PATH]" >&2
    exit 2
}

PORTICO=
while (($#)); do
    case $1 in
        --portico)
            (($# >= 2)) || usage
            PORTICO=$2
            shift 2
            ;;
        --portico=*)
            PORTICO=${1#--portico=}
            shift
            ;;
        -h | --help) usage ;;
        *) usage ;;
    esac
done

# ---- prerequisites ---------------------------------------------------------

[[ $(id -u) == 0 ]] || die "needs root (network namespaces and nftables): run it with sudo"
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 or later (for EPOCHREALTIME)"
command -v iperf3 >/dev/null || die "missing: iperf3 (apt-get install iperf3)"
# Debian keeps dnsmasq in /usr/sbin, which is not on every PATH.
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[[ -x $DNSMASQ ]] || die "missing: dnsmasq (apt-get install dnsmasq)"
need "apt-get install busybox curl jq nftables iproute2 coreutils" busybox curl jq nft ip timeout
for v in DURATION OMIT ROUNDS GARDEN_TRIES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
((DURATION >= 3 && ROUNDS >= 1 && GARDEN_TRIES >= 1 && GARDEN_TRIES <= 200)) \
    || die "needs DURATION >= 3, ROUNDS >= 1, 1 <= GARDEN_TRIES <= 200"

# Only algorithms the kernel already has: asking for another would load a
# module on the whole machine.
read -r -a have_cc </proc/sys/net/ipv4/tcp_available_congestion_control
CC_LIST=() CC_SKIPPED=()
for cc in $CCS; do
    if [[ " ${have_cc[*]} " == *" $cc "* ]]; then CC_LIST+=("$cc"); else CC_SKIPPED+=("$cc"); fi
done
((${#CC_LIST[@]})) || die "none of CCS ($CCS) is available here (have: ${have_cc[*]})"
CPU_CC=${CC_LIST[0]}

if [[ -z $PORTICO ]]; then
    need "https://rustup.rs, or pass --portico PATH" cargo
    build_release
fi
[[ -x $PORTICO ]] || die "no Portico binary at $PORTICO"
PORTICO=$(realpath "$PORTICO")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-fairuse.XXXXXX")
chmod 700 "$TMP"
PFX=pf$$
GW=${PFX}g
UPNS=${PFX}u
HELD=${PFX}h
NAMESPACES=()
PIDS=()
PORTICO_PID=
T_START=$(now_us)

# Stops everything this script started: its processes by pid, then whatever
# still runs inside its own namespaces (their children, e.g. httpd's), then
# the namespaces, which takes their veths, addresses and tables with them.
cleanup() {
    local pid ns
    stop "$PORTICO_PID"
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do stop "$pid"; done
    for ns in ${NAMESPACES[@]+"${NAMESPACES[@]}"}; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || note "could not delete namespace $ns"
    done
}
on_exit cleanup

# ---- the venue --------------------------------------------------------------

# `ip netns exec NS PROGRAM` enters NS and execs PROGRAM (no fork), so the
# pid of a `ip netns exec … &` is the program's own: `stop` reaches it.

add_ns() {
    ip netns add "$1" || die "ip netns add $1 failed"
    NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

# add_phone NS PORT MAC ADDR: a veth created inside the gateway with its
# other end inside the phone, so no link ever exists in the root namespace.
add_phone() {
    local ns=$1 port=$2 mac=$3 addr=$4
    add_ns "$ns"
    ip -n "$GW" link add "$port" type veth peer name eth0 address "$mac" netns "$ns"
    ip -n "$GW" link set "$port" master br-lan up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" route add default via "$LAN_GW"
}

echo "== building the venue (namespaces $PFX*)" >&2
add_ns "$GW"
ip netns exec "$GW" sysctl -q -w net.ipv4.ip_forward=1
ip -n "$GW" link add br-lan type bridge stp_state 0
ip -n "$GW" link set br-lan up
ip -n "$GW" addr add "$LAN_GW/24" dev br-lan
add_ns "$UPNS"
ip -n "$GW" link add wan0 type veth peer name eth0 netns "$UPNS"
ip -n "$GW" link set wan0 up
ip -n "$GW" addr add "$WAN_GW/24" dev wan0
ip -n "$UPNS" link set eth0 up
ip -n "$UPNS" addr add "$UP/24" dev eth0
ip -n "$UPNS" addr add "$UP_OTHER/24" dev eth0
ip -n "$UPNS" route add default via "$WAN_GW"

PHONE_NS=() PHONE_MAC=() PHONE_IP=()
for i in 1 2 3; do
    PHONE_NS[i]=${PFX}p$i
    PHONE_MAC[i]=02:00:00:77:00:0$i
    PHONE_IP[i]=10.77.1.1$i
    add_phone "${PHONE_NS[i]}" "lan-p$i" "${PHONE_MAC[i]}" "${PHONE_IP[i]}"
done
HELD_MAC=02:00:00:77:00:99
add_phone "$HELD" lan-h "$HELD_MAC" 10.77.1.99

# One iperf3 server per phone (a server runs one test at a time).
for i in 1 2 3; do
    ip netns exec "$UPNS" iperf3 -s -B "$UP" -p $((5200 + i)) </dev/null >"$TMP/iperf3-server-$i.log" 2>&1 &
    PIDS+=($!)
done

# ---- Portico ----------------------------------------------------------------

mkdir -p "$TMP/state"

# write_config NAME FIREWALL_LINES [MORE_SECTIONS]: a config for the venue.
write_config() {
    cat >"$TMP/$1.toml" <<EOF
[venue]
name = "Fair Use Bench"
kind = "station"

[portal]
listen = "[::]:$PORTAL_PORT"
public_url = "http://$LAN_GW:$PORTAL_PORT/"
session = "12h"

[firewall]
backend = "nftables"
interface = "br-lan"
table = "$TABLE"
$2

[state]
dir = "$TMP/state"

[admin]
listen = "$ADMIN"
${3:-}
EOF
}

portico_alive() { alive "$PORTICO_PID" Portico "$1" "$TMP/portico.log"; }

# portico_start NAME: Portico with config NAME in the gateway, until its
# admin listener answers (bounded: 10 s).
portico_start() {
    [[ -z $PORTICO_PID ]] || die "Portico is already running"
    run_portico -n "$GW" PORTICO_PID "Portico (config $1)" "http://$ADMIN/healthz" "$TMP/portico.log" \
        "$PORTICO" run --config "$TMP/$1.toml"
}

portico_stop() {
    stop "$PORTICO_PID"
    PORTICO_PID=
}

# portico_with NAME: Portico restarted with config NAME, until its table
# holds the grants of phones 1-3 (bounded: 10 s). /healthz answers before
# the start-up install is done (the firewall's own worker makes it), and a
# stopped Portico leaves its table in place: so the old table is removed
# first, and the grants seen are the new table's.
portico_with() {
    local i n set
    portico_stop
    ip netns exec "$GW" "$PORTICO" firewall remove --config "$TMP/$1.toml" >/dev/null \
        || die "portico firewall remove failed"
    portico_start "$1"
    for ((n = 0; n < 100; n++)); do
        set=$(ip netns exec "$GW" nft list set inet "$TABLE" allowed_mac 2>&1 || true)
        for i in ${GRANTED[@]+"${GRANTED[@]}"}; do
            grep -qi "${PHONE_MAC[i]}" <<<"$set" || continue 2
        done
        grep -q "$TABLE" <<<"$set" && return 0
        portico_alive "installing its table with config $1"
        sleep 0.1
    done
    die "config $1: the grants of phones ${GRANTED[*]} are not in allowed_mac after 10 s: $set"
}

# Grants phone I as its Connect tap does: the form POSTed to the portal.
grant() {
    local i=$1 code
    code=$(ip netns exec "${PHONE_NS[i]}" curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST --data 'lang=en' \
        "http://$LAN_GW:$PORTAL_PORT/" || true)
    [[ $code == 303 ]] || die "phone $i: the Connect POST answered '$code', not 303 (see $TMP/portico.log)"
}

# ---- measuring ----------------------------------------------------------------

# busy and steal ticks of all CPUs, from /proc/stat's first line.
steal_ticks() { awk '$1 == "cpu" { print $9; exit }' /proc/stat; }

# iperf PHONE OUT ARGS...: iperf3 from phone PHONE to its own server, JSON
# into OUT; bounded by a timeout well over the run's length.
iperf() {
    local i=$1 out=$2
    shift 2
    timeout $((DURATION + OMIT + 20)) ip netns exec "${PHONE_NS[i]}" \
        iperf3 -c "$UP" -p $((5200 + i)) -J "$@" </dev/null >"$out" 2>"$out.err" || true
}

# "Mbit/s retransmits resent%" of one iperf3 result: the receiver's rate,
# the sender's retransmits, and those as a share of the segments received
# (full-size segments assumed), or dies with what iperf3 said.
iperf_result() {
    jq -e -r '.end.sum_received.bits_per_second as $b | .end.sum_sent.retransmits as $r
        | (.start.tcp_mss_default // 1448) as $mss | .end.sum_received.bytes as $n
        | select($b != null)
        | "\($b / 1e6) \($r // "?") \(if $r and $n > 0 then $r * $mss / $n * 100 | round else "?" end)"' "$1" 2>/dev/null \
        || die "iperf3 gave no result: $(jq -r '.error // empty' "$1" 2>/dev/null) $(head -c 400 "$1.err" 2>/dev/null)"
}

RATE_ROWS=()
# rate_case RATE DIRECTION CC PHONES...: the phones' transfers at once,
# the sender on TCP congestion control CC; one table row per phone, plus
# their sum when there are several.
rate_case() {
    local rate=$1 dir=$2 cc=$3 i n sum=0 res mbit rexmit resent ratio ok pids=() bits out
    shift 3
    n=$#
    bits=$(rate_bits "$rate")
    echo "== $dir, rate $rate, $n device(s) at once, $cc" >&2
    for i in "$@"; do
        out=$TMP/rate-$rate-$cc-$n-$i.json
        if [[ $dir == download ]]; then
            iperf "$i" "$out" -R -C "$cc" -t "$DURATION" -O "$OMIT" &
        else
            iperf "$i" "$out" -C "$cc" -t "$DURATION" -O "$OMIT" &
        fi
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    for i in "$@"; do
        res=$(iperf_result "$TMP/rate-$rate-$cc-$n-$i.json")
        read -r mbit rexmit resent <<<"$res"
        ratio=$(awk -v m="$mbit" -v b="$bits" 'BEGIN { printf "%.2f", m * 1e6 / b }')
        ok=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.85 && r <= 1.15) ? "yes" : "NO" }')
        sum=$(awk -v s="$sum" -v m="$mbit" 'BEGIN { print s + m }')
        RATE_ROWS+=("| $dir | $rate | $cc | $n | phone $i | $(printf '%.2f' "$mbit") | $ratio | $ok | $rexmit | $resent % |")
    done
    if ((n > 1)); then
        RATE_ROWS+=("| $dir | $rate | $cc | $n | (sum) | $(printf '%.2f' "$sum") | $(awk -v m="$sum" -v b="$bits" -v n="$n" \
            'BEGIN { printf "%.2f of %d×", m * 1e6 / b, n }') | | | |")
    fi
}

# "4mbit" -> bits per second, as Portico reads it (k/m/g are powers of ten).
rate_bits() {
    awk -v r="$1" 'BEGIN {
        n = r + 0; u = r; sub(/^[0-9.]+/, "", u)
        s = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : 1
        printf "%.0f", n * s }'
}

declare -A CPU_GBPS CPU_SPG CPU_STEAL CPU_REXMIT CPU_BUSY
# cpu_run KIND ROUND: phone 1 downloads flat out; throughput and busy CPU
# seconds per GB received.
cpu_run() {
    local kind=$1 round=$2 b0 b1 s0 s1 t0 t1 out=$TMP/cpu-$1-$2.json bytes gbps
    b0=$(busy_ticks)
    s0=$(steal_ticks)
    t0=$(now_us)
    iperf 1 "$out" -R -C "$CPU_CC" -t "$DURATION"
    t1=$(now_us)
    b1=$(busy_ticks)
    s1=$(steal_ticks)
    iperf_result "$out" >/dev/null
    bytes=$(jq '.end.sum_received.bytes' "$out")
    gbps=$(jq '.end.sum_received.bits_per_second / 1e9' "$out")
    CPU_GBPS[$kind]+="$gbps "
    CPU_SPG[$kind]+="$(awk -v t=$((b1 - b0)) -v hz="$HZ" -v b="$bytes" 'BEGIN { print t / hz / (b / 1e9) }') "
    CPU_STEAL[$kind]+="$(awk -v t=$((s1 - s0)) -v hz="$HZ" 'BEGIN { print t / hz }') "
    CPU_REXMIT[$kind]+="$(jq '.end.sum_sent.retransmits // 0' "$out") "
    CPU_BUSY[$kind]+="$(awk -v t=$((b1 - b0)) -v hz="$HZ" -v us=$((t1 - t0)) -v n="$(nproc)" \
        'BEGIN { print 100 * t / hz / (us / 1e6) / n }') "
    note "cpu $kind round $round: $(printf '%.2f' "$gbps") Gbit/s, $(awk -v t=$((b1 - b0)) -v hz="$HZ" -v b="$bytes" \
        'BEGIN { printf "%.2f CPU s/GB", t / hz / (b / 1e9) }')"
}

# The median of the numbers given (mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# The numbers given, in the order given, each with FORMAT ($1).
each() {
    local format=$1
    shift
    printf '%s\n' "$@" | awk -v f="$format" '{ printf (NR > 1 ? " " : "") f, $1 }'
}

# ---- 1. the per-device rate --------------------------------------------------

write_config rate4 'device_rate = "4mbit"'
write_config rate20 'device_rate = "20mbit"'
write_config up2 'device_upload_rate = "2mbit"'
write_config plain ''
write_config meter 'device_rate = "100gbit"'
write_config garden '' '
[walled_garden]
hosts = ["'"$GARDEN"'"]
ports = [443]'

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
GRANTED=()
portico_start rate4
for i in 1 2 3; do grant "$i"; done
GRANTED=(1 2 3)
portico_with rate4 # the grants as a restart finds them in the state dir
note "phones 1-3 granted; ruleset: $(ip netns exec "$GW" nft list chain inet "$TABLE" gate_down | grep -o 'limit rate.*bytes' | head -n 1)"

for cc in "${CC_LIST[@]}"; do
    rate_case 4mbit download "$cc" 1
    rate_case 4mbit download "$cc" 1 2 3
done
portico_with rate20
for cc in "${CC_LIST[@]}"; do
    rate_case 20mbit download "$cc" 1
    rate_case 20mbit download "$cc" 1 2 3
done
portico_with up2
for cc in "${CC_LIST[@]}"; do rate_case 2mbit upload "$cc" 1; done

# ---- 2. the CPU cost of the limiter -----------------------------------------

for ((r = 1; r <= ROUNDS; r++)); do
    echo "== CPU round $r of $ROUNDS: a (no rate), b (100gbit meter), c (no table)" >&2
    portico_with plain
    cpu_run a "$r"
    portico_with meter
    cpu_run b "$r"
    portico_stop
    ip netns exec "$GW" "$PORTICO" firewall remove --config "$TMP/plain.toml" >/dev/null
    ! ip netns exec "$GW" nft list table inet "$TABLE" >/dev/null 2>&1 || die "the table is still there for run c"
    cpu_run c "$r"
done

# ---- 3. the walled garden ---------------------------------------------------

echo "== walled garden" >&2
portico_with garden
NFTSET=$("$PORTICO" dhcp print --config "$TMP/garden.toml" 2>/dev/null | grep '^nftset=') \
    || die "portico dhcp print wrote no nftset= line"

# dnsmasq NS NAME ADDR LINES: a DNS-only dnsmasq on ADDR, in the foreground.
dnsmasq_start() {
    local ns=$1 name=$2 addr=$3 i out
    cat >"$TMP/dnsmasq-$name.conf" <<EOF
port=53
listen-address=$addr
bind-interfaces
no-resolv
no-hosts
no-poll
user=root
log-queries
log-facility=$TMP/dnsmasq-$name.log
$4
EOF
    ip netns exec "$ns" "$DNSMASQ" --keep-in-foreground --pid-file= --conf-file="$TMP/dnsmasq-$name.conf" \
        </dev/null >/dev/null 2>"$TMP/dnsmasq-$name.err" &
    PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        out=$(ip netns exec "$ns" busybox nslookup -type=a "$GARDEN" "$addr" 2>&1 || true)
        grep -q "^Address:.*$UP\$" <<<"$out" && return 0
        kill -0 "${PIDS[-1]}" 2>/dev/null || die "dnsmasq ($name) exited: $(cat "$TMP/dnsmasq-$name.err")"
        sleep 0.1
    done
    die "dnsmasq ($name) did not answer on $addr within 10 s"
}

records="host-record=$GARDEN,$UP
host-record=$OTHER,$UP_OTHER"
for ((k = 1; k <= GARDEN_TRIES; k++)); do records+=$'\n'"host-record=t$k.$GARDEN,$UP"; done
dnsmasq_start "$UPNS" upstream "$UP" "$records"
dnsmasq_start "$GW" gateway "$LAN_GW" "server=/$GARDEN/$UP
server=/bench.test/$UP
$NFTSET"
# A listener on 443 on both upstream addresses; each connect is accepted.
mkdir -p "$TMP/www"
ip netns exec "$UPNS" busybox httpd -f -p 443 -h "$TMP/www" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.2
ip netns exec "$UPNS" bash -c ": 2>/dev/null 3<>/dev/tcp/$UP/443" || die "busybox httpd is not listening on $UP:443"
# The lookup above (readiness) put the garden's address in the set.
ip netns exec "$GW" nft flush set inet "$TABLE" garden_v4

# One try, run inside the held phone: "before dns_us connect_us tries
# connected answer again_us", times in µs; connects for at most 2 s, with PAUSE s
# between them if given. `: 3<>/dev/tcp/…` is a connect by bash itself (no
# process started), refused at once by the table's TCP reset.
cat >"$TMP/try.sh" <<'EOF'
name=$1 addr=$2 dns=$3 pause=${4:-}
before=refused
if : 2>/dev/null 3<>"/dev/tcp/$addr/443"; then before=open; fi
t0=${EPOCHREALTIME/[.,]/}
out=$(busybox nslookup -type=a "$name" "$dns" 2>&1) || true
t1=${EPOCHREALTIME/[.,]/}
tries=0 connected=no
while :; do
    tries=$((tries + 1))
    if : 2>/dev/null 3<>"/dev/tcp/$addr/443"; then connected=yes; break; fi
    t2=${EPOCHREALTIME/[.,]/}
    ((t2 - t1 < 2000000)) || break
    [[ -z $pause ]] || sleep "$pause"
done
t2=${EPOCHREALTIME/[.,]/}
# One more connect, to an address now open: what a connect costs anyway.
again=0
if [[ $connected == yes ]] && : 2>/dev/null 3<>"/dev/tcp/$addr/443"; then
    t3=${EPOCHREALTIME/[.,]/}
    again=$((t3 - t2))
fi
answer=no
grep -qE "^Address:[[:space:]]+${addr//./\\.}\$" <<<"$out" && answer=yes
echo "$before $((t1 - t0)) $((t2 - t1)) $tries $connected $answer $again"
EOF

GARDEN_US=() GARDEN_DNS=() GARDEN_TRIES_N=() GARDEN_AGAIN=() GARDEN_BAD=()
for ((k = 1; k <= GARDEN_TRIES; k++)); do
    ip netns exec "$GW" nft flush set inet "$TABLE" garden_v4
    read -r before dns_us conn_us tries connected answer again_us \
        <<<"$(timeout 10 ip netns exec "$HELD" bash "$TMP/try.sh" "t$k.$GARDEN" "$UP" "$LAN_GW" || echo "timeout 0 0 0 no no 0")"
    if [[ $before != refused || $connected != yes || $answer != yes ]]; then
        GARDEN_BAD+=("t$k: before the lookup $before, answer has $UP: $answer, connected: $connected after $tries tries")
        continue
    fi
    GARDEN_US+=("$conn_us") GARDEN_DNS+=("$dns_us") GARDEN_TRIES_N+=("$tries") GARDEN_AGAIN+=("$again_us")
done
# Not in the garden: same upstream host, its other address.
ip netns exec "$GW" nft flush set inet "$TABLE" garden_v4
read -r _ _ o_us o_tries o_connected o_answer _ \
    <<<"$(timeout 10 ip netns exec "$HELD" bash "$TMP/try.sh" "$OTHER" "$UP_OTHER" "$LAN_GW" 0.05 || echo "timeout 0 0 0 ? no 0")"
in_set=$(ip netns exec "$GW" nft list set inet "$TABLE" garden_v4 | grep -c "$UP_OTHER" || true)
# And the held phone still cannot reach the garden's address on another port.
o_port=refused
ip netns exec "$HELD" timeout 3 bash -c ": 2>/dev/null 3<>/dev/tcp/$UP/5201" && o_port=open
portico_stop

# ---- report -----------------------------------------------------------------

pct() { printf '%s\n' "$@" | sort -n | awk -v p="$PCT" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }

echo
echo "## Per-device rate (iperf3, ${DURATION} s after ${OMIT} s left out; target within ±15 % of the rate)"
echo
echo "| direction | rate | sender's TCP | devices at once | device | Mbit/s | ratio to rate | within ±15 % | retransmits | resent |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${RATE_ROWS[@]}"
echo
((${#CC_SKIPPED[@]} == 0)) || echo "Not measured (the kernel does not have them loaded): ${CC_SKIPPED[*]}."
echo "Download: iperf3 -R (upstream sends, the phone receives); limited by the gate_down meter"
echo "(per destination address). Upload: the phone sends; limited by the up_mac meter (per MAC)."
echo "Retransmits: the sender's TCP retransmits over the measured seconds; each is a segment the"
echo "policer dropped (nothing else drops at these rates). Resent: retransmits × MSS / bytes received,"
echo "what the policer made the sender send again (and, on a real gateway, the WAN carry twice)."
echo
echo "## CPU cost of the rate at line rate (phone 1, iperf3 -R -C $CPU_CC ${DURATION} s, median of $ROUNDS, alternated a,b,c)"
echo
echo "| config | Gbit/s (median) | Gbit/s per round | CPU s per GB (median) | CPU s/GB per round | CPUs busy (median) | retransmits (median) | steal s (median) |"
echo "|---|---|---|---|---|---|---|---|"
declare -A CPU_LABEL=(
    [a]="a: Portico's table, no rate"
    [b]="b: device_rate = \"100gbit\" (meter, never limits)"
    [c]="c: no Portico table"
)
for kind in a b c; do
    read -r -a g <<<"${CPU_GBPS[$kind]}"
    read -r -a s <<<"${CPU_SPG[$kind]}"
    read -r -a st <<<"${CPU_STEAL[$kind]}"
    read -r -a rx <<<"${CPU_REXMIT[$kind]}"
    read -r -a bz <<<"${CPU_BUSY[$kind]}"
    echo "| ${CPU_LABEL[$kind]} | $(printf '%.2f' "$(median "${g[@]}")") | $(each %.2f "${g[@]}") |" \
        "$(printf '%.3f' "$(median "${s[@]}")") | $(each %.3f "${s[@]}") | $(printf '%.0f' "$(median "${bz[@]}")") % |" \
        "$(printf '%.0f' "$(median "${rx[@]}")") |" \
        "$(printf '%.2f' "$(median "${st[@]}")") |"
done
read -r -a sa <<<"${CPU_SPG[a]}"
read -r -a sb <<<"${CPU_SPG[b]}"
read -r -a sc <<<"${CPU_SPG[c]}"
ma=$(median "${sa[@]}") mb=$(median "${sb[@]}") mc=$(median "${sc[@]}")
# Differences within a round (its runs are seconds apart), then their median:
# drift in the machine's load over the minutes cancels out.
pairs() {
    local -n x=$1 y=$2
    local k d=()
    for k in "${!x[@]}"; do d+=("$(awk -v x="${x[k]}" -v y="${y[k]}" 'BEGIN { print 100 * (x - y) / y }')"); done
    echo "$(each %+.1f%% "${d[@]}") (median $(printf '%+.1f' "$(median "${d[@]}")") %)"
}
echo
echo "The limiter's cost, b over a: $(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%+.3f CPU s per GB (%+.1f %%)", b - a, 100 * (b - a) / a }') between"
echo "the medians; within each round: $(pairs sb sa)."
echo "The table without a rate, a over c: $(awk -v a="$ma" -v c="$mc" 'BEGIN { printf "%+.3f CPU s per GB (%+.1f %%)", a - c, 100 * (a - c) / c }') between"
echo "the medians; within each round: $(pairs sa sc)."
echo "Without the table the gateway does no connection tracking either (the table's \`redirect\`"
echo "turns it on), so a over c includes conntrack's cost."
echo "CPU: busy time of all $(nproc) CPUs from /proc/stat (user+nice+system+irq+softirq) over the"
echo "transfer, iperf3's sender and receiver included, per GB received; CPUs busy: that busy time"
echo "as a share of all CPUs over the run (near 100 %, CPU s/GB is about 1/throughput). Rounds that"
echo "disagree by more than the difference measured were disturbed by other work on the machine."
echo
echo "## Walled garden: from the DNS answer to the first connect (held phone, $GARDEN_TRIES tries)"
echo
if ((${#GARDEN_US[@]})); then
    PCT=50 && p50=$(pct "${GARDEN_US[@]}") && d50=$(pct "${GARDEN_DNS[@]}") && t50=$(pct "${GARDEN_TRIES_N[@]}") \
        && a50=$(pct "${GARDEN_AGAIN[@]}")
    PCT=100 && pmax=$(pct "${GARDEN_US[@]}") && dmax=$(pct "${GARDEN_DNS[@]}") && tmax=$(pct "${GARDEN_TRIES_N[@]}") \
        && amax=$(pct "${GARDEN_AGAIN[@]}")
    first=0
    for t in "${GARDEN_TRIES_N[@]}"; do ((t != 1)) || first=$((first + 1)); done
    echo "| measure | p50 | max |"
    echo "|---|---|---|"
    echo "| answer → first successful TCP 443 connect | $(ms "$p50") | $(ms "$pmax") |"
    echo "| (for comparison: the next connect, address already open) | $(ms "$a50") | $(ms "$amax") |"
    echo "| connects tried until one succeeded | $t50 | $tmax |"
    echo "| DNS lookup (query → answer, through both dnsmasqs) | $(ms "$d50") | $(ms "$dmax") |"
    echo
    echo "${#GARDEN_US[@]} of $GARDEN_TRIES tries measured; the first connect after the answer succeeded in $first of them."
    echo "Before each lookup the set garden_v4 was flushed and a connect to $UP:443 was refused."
else
    echo "no try connected"
fi
for b in ${GARDEN_BAD[@]+"${GARDEN_BAD[@]}"}; do echo "FAILED try $b"; done
echo
echo "Not in the garden: $OTHER, on the same upstream host (answer has $UP_OTHER: $o_answer):"
echo "TCP 443 to $UP_OTHER $( [[ $o_connected == no ]] && echo "refused, all $o_tries connects over $(ms "$o_us")" \
    || echo "CONNECTED (wrong)"); $UP_OTHER in garden_v4: $( ((in_set == 0)) && echo no || echo "YES (wrong)")."
echo "The garden's own address on a port not in the garden ($UP:5201, iperf3 listening): $o_port."
echo
echo "## Conditions"
echo
echo "Load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs);" \
    "kernel $(uname -r); $(iperf3 --version | head -n 1 | cut -d' ' -f1-2); $("$DNSMASQ" --version | head -n 1 | cut -d' ' -f1-3);" \
    "$(nft --version); $("$PORTICO" --version)."
echo "Policer: \`burst\` is a quarter second of the rate, at least 64 KiB (fn burst in"
echo "src/firewall/nftables.rs); the kernel's bucket for a byte limit holds that burst plus one"
echo "second of the rate."
echo "Total time: $((($(now_us) - T_START) / 1000000)) s."
