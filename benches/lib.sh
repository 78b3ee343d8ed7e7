# shellcheck shell=bash
# Functions shared by the benchmark scripts (load.sh, abuse.sh, fairuse.sh,
# connect.sh), sourced first thing, once REPO is set. Only ever acts on pids
# the script started, on its own namespaces and on loopback ports.

# A message naming the script, and an exit.
die() {
    echo "${0##*/}: $*" >&2
    exit 1
}
note() { echo "${0##*/}: $*" >&2; }

# need HINT TOOL...: dies naming every TOOL that is not on PATH, with HINT
# (how to install them).
need() {
    local hint=$1 tool missing=()
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]} ($hint)"
}

# on_exit FUNCTION: when the script ends, however it ends (done, a failure,
# Ctrl-C, SIGTERM), FUNCTION stops what it started, then $TMP (if set) is
# removed, and the script exits with its own status.
on_exit() {
    ON_EXIT=$1
    trap exit_cleanly EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
exit_cleanly() {
    local rc=$?
    trap - EXIT INT TERM
    "$ON_EXIT" || true
    [[ -z ${TMP:-} ]] || rm -rf -- "$TMP"
    exit "$rc"
}

# Stops one process: TERM, up to 5 s, then KILL.
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

# alive PID NAME WHEN [LOG]: dies unless PID still runs, saying NAME died
# WHEN, after the end of LOG (its output) if given.
alive() {
    kill -0 "$1" 2>/dev/null && return 0
    [[ -z ${4:-} ]] || tail -n 20 "$4" >&2 || true
    die "$2 died ($3)${4:+; the end of its log is above}"
}

# wait_for [-n NS] URL PID NAME [LOG]: waits (at most ~10 s) until URL
# answers with any HTTP status, asked from inside namespace NS if given,
# while PID lives (see `alive`).
wait_for() {
    local in=() url pid name log i code
    if [[ $1 == -n ]]; then
        in=(ip netns exec "$2")
        shift 2
    fi
    url=$1 pid=$2 name=$3 log=${4:-}
    for ((i = 0; i < 100; i++)); do
        alive "$pid" "$name" "during start-up" "$log"
        code=$("${in[@]}" curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" 2>/dev/null || true)
        [[ $code != 000 && -n $code ]] && return 0
        sleep 0.1
    done
    die "$name did not answer on $url within 10 s"
}

# run_portico [-n NS] VAR NAME HEALTHZ LOG COMMAND...: starts COMMAND (a
# `portico run`, perhaps behind taskset) in the background, inside
# namespace NS if given, with RUST_LOG=warn and its output appended to LOG
# ("-": this script's own stderr); sets the variable named VAR to its pid
# and waits until HEALTHZ answers (`wait_for`). `ip netns exec` and taskset
# exec the program in place, so the pid is Portico's own and `stop` reaches
# it.
run_portico() {
    local in=() ns=() var name url log
    if [[ $1 == -n ]]; then
        in=(ip netns exec "$2")
        ns=(-n "$2")
        shift 2
    fi
    var=$1 name=$2 url=$3 log=$4
    shift 4
    if [[ $log == - ]]; then
        RUST_LOG=warn "${in[@]}" "$@" </dev/null &
    else
        RUST_LOG=warn "${in[@]}" "$@" </dev/null >>"$log" 2>&1 &
    fi
    printf -v "$var" '%s' "$!"
    wait_for "${ns[@]}" "$url" "${!var}" "$name" "${log#-}"
}

# Builds this tree's release binary and sets PORTICO to it.
build_release() {
    echo "== cargo build --release (in $REPO)" >&2
    (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
    PORTICO=$REPO/target/release/portico
    [[ -x $PORTICO ]] || die "no binary at $PORTICO"
}

# A loopback TCP port nobody listens on, picked at random below the kernel's
# ephemeral range, so that tests binding port 0 on the same machine cannot
# grab it between this check and the server's bind. Sets the variable named
# $1 (not echoed: a $(...) subshell would lose TAKEN). Bounded.
declare -A TAKEN=()
PORT_LO=10000
PORT_HI=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
((PORT_HI > PORT_LO + 1000)) || PORT_HI=32767
free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((PORT_LO + (RANDOM * 32768 + RANDOM) % (PORT_HI - PORT_LO)))
        [[ -z ${TAKEN[$port]:-} ]] || continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            TAKEN[$port]=1
            printf -v "$1" '%s' "$port"
            return 0
        fi
    done
    die "no free loopback port found"
}

# Clock ticks per second, the unit of /proc's CPU times.
HZ=$(getconf CLK_TCK)

# utime + stime of PID, in clock ticks.
proc_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat")
    rest=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$rest"
}

# cpu_share TICKS US: TICKS of CPU time over US µs, as a share of one core
# ("37%").
cpu_share() {
    awk -v t="$1" -v hz="$HZ" -v us="$2" 'BEGIN { printf "%.0f%%", 100 * t / hz * 1e6 / us }'
}

psi_us() {
    if [[ -r /proc/pressure/cpu ]]; then
        awk -F'total=' '/^some/ { print $2 }' /proc/pressure/cpu
    else
        echo ""
    fi
}

# psi_share BEFORE AFTER US: the share of US µs in which some task waited for
# a CPU, from two psi_us readings ("0.4%"; "n/a" where the kernel has no
# pressure information).
psi_share() {
    if [[ -n $1 && -n $2 ]]; then
        awk -v d=$(($2 - $1)) -v us="$3" 'BEGIN { printf "%.1f%%", 100 * d / us }'
    else
        echo n/a
    fi
}

# disturbed SHARE: whether a psi_share is over 5 %, so that other work
# competed for the CPUs and the run is noise.
disturbed() {
    [[ $1 != n/a ]] && awk -v p="${1%\%}" 'BEGIN { exit !(p > 5) }'
}

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# Busy clock ticks of all CPUs since boot (user + nice + system + irq +
# softirq, from /proc/stat's first line); idle, iowait and steal left out.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }

# change_table FROM TO: a markdown table of the change from FROM to TO (two
# builds, or two set-ups, as the header names them) in requests/s and in CPU
# µs per request; reads "target FROM_rps TO_rps FROM_us TO_us" lines.
change_table() {
    echo "| target | $1 requests/s | $2 requests/s | change | $1 CPU µs/request | $2 CPU µs/request | change |"
    echo "|---|---|---|---|---|---|---|"
    awk '
        function pct(now, before) { return before ? sprintf("%+.1f%%", 100 * (now - before) / before) : "n/a" }
        { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, pct($3, $2), $4, $5, pct($5, $4) }'
}
