# shellcheck shell=bash
# Helpers shared by the benchmark scripts (load.sh, abuse.sh, fairuse.sh),
# sourced after the script defines `die`. Only ever acts on pids the script
# started and on loopback ports.

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

# utime + stime of PID, in clock ticks.
proc_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat")
    rest=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$rest"
}

psi_us() {
    if [[ -r /proc/pressure/cpu ]]; then
        awk -F'total=' '/^some/ { print $2 }' /proc/pressure/cpu
    else
        echo ""
    fi
}

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# Busy clock ticks of all CPUs since boot (user + nice + system + irq +
# softirq, from /proc/stat's first line); idle, iowait and steal left out.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
