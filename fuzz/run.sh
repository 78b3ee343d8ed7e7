#!/usr/bin/env bash
# Runs every cargo-fuzz target of issue 5 for a fixed time and prints one
# table: | target | seconds | executions | exec/s | crashes |.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET]      (default 60)
#
# - Builds all targets once: release, with debug assertions and overflow
#   checks (cargo fuzz's default), and AddressSanitizer.
# - Toolchain: stable Rust, as everywhere else in the project, with
#   RUSTC_BOOTSTRAP=1 so that it takes the -Z flags cargo fuzz passes. Stable ships the ASan runtime
#   (lib/rustlib/<host>/lib/librustc-stable_rt.asan.a) and `-s address`
#   links with it, so the targets run under ASan. Should a toolchain lack
#   that runtime, the script says so and falls back to `--sanitizer none`
#   (panics, overflow checks and the targets' asserts still fire; only
#   memory errors in unsafe code would go unseen). FUZZ_SANITIZER=none
#   forces that choice.
# - Each target runs alone (one job, one core) with the corpus
#   fuzz/corpus/<target> (kept out of git) plus the committed seeds in
#   fuzz/seeds/<target>, which libFuzzer reads but never writes.
# - Executions come from libFuzzer's final stats
#   (stat::number_of_executed_units); crashes are the crash-, oom-, leak-
#   and timeout- files this run left in fuzz/artifacts/<target>/.
#   A hang counts as a crash: -timeout=25 (libFuzzer's default is 20 min).
# - The campaign and journal targets write files: TMPDIR points at a
#   scratch folder on tmpfs (every journal open and append fsyncs), removed
#   at the end.
#
# Exits 1 if any target crashed or failed to run, 0 otherwise, and 0 with
# SKIPPED when cargo-fuzz is not installed. Logs: fuzz/target/fuzz-logs/.
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash fuzz/run.sh [SECONDS_PER_TARGET]   (a whole number of seconds, default 60)" >&2
    exit 2
fi

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$fuzz_dir")"
targets=(classify lang config campaign journal svg)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "SKIPPED: cargo-fuzz is not installed; install it with \`cargo install cargo-fuzz\`"
    exit 0
fi

export RUSTC_BOOTSTRAP=1
logs="$fuzz_dir/target/fuzz-logs"
mkdir -p "$logs"
cd "$root"

host="$(rustc -vV | sed -n 's/^host: //p')"
sanitizer="${FUZZ_SANITIZER:-address}"
build() {
    echo "== cargo fuzz build --sanitizer $sanitizer (release, debug assertions on)"
    cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" 2>&1 | tee "$logs/build.log" | tail -n 3
    return "${PIPESTATUS[0]}"
}
if ! build; then
    asan_rt="$(rustc --print sysroot)/lib/rustlib/$host/lib"
    if [[ "$sanitizer" == address ]] && ! compgen -G "$asan_rt/*rt.asan.a" >/dev/null; then
        echo "== this toolchain has no AddressSanitizer runtime in $asan_rt; building with --sanitizer none"
        sanitizer=none
        build || { echo "build failed; see $logs/build.log" >&2; exit 1; }
    else
        echo "build failed; see $logs/build.log" >&2
        exit 1
    fi
fi

# The binaries just built are run directly, not through `cargo fuzz run`,
# which would rebuild first: every target then fuzzes the same source even
# if someone edits src/ while this runs.
bin="$fuzz_dir/target/$host/release"

scratch="$(mktemp -d -p /dev/shm portico-fuzz.XXXXXX 2>/dev/null || mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# A number in libFuzzer's final stats, or "?" if it printed none.
stat() {
    local value
    value="$(sed -n "s/^stat::$1: *//p" "$2" | tail -n 1)"
    echo "${value:-?}"
}

rows=()
failed=0
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    seeds="$fuzz_dir/seeds/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    log="$logs/$target.log"
    mkdir -p "$corpus" "$seeds" "$artifacts"
    stamp="$scratch/$target.stamp"
    touch "$stamp"
    # Files written within the same second as the stamp must still count.
    sleep 1

    echo "== $target: ${seconds}s (log: $log)"
    started=$(date +%s)
    status=0
    TMPDIR="$scratch" "$bin/$target" -artifact_prefix="$artifacts/" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=25 "$corpus" "$seeds" \
        </dev/null >"$log" 2>&1 || status=$?
    # libFuzzer's own count of seconds fuzzed; the wall clock if it printed none.
    elapsed="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)"
    elapsed="${elapsed:-$(($(date +%s) - started))}"

    executions="$(stat number_of_executed_units "$log")"
    rate="$(stat average_exec_per_sec "$log")"
    crashes="$(find "$artifacts" -maxdepth 1 -type f -newer "$stamp" \
        \( -name 'crash-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'timeout-*' \) | wc -l)"
    tail -n 4 "$log" | sed 's/^/   /'

    if ((crashes > 0)); then
        failed=1
        find "$artifacts" -maxdepth 1 -type f -newer "$stamp" \
            \( -name 'crash-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'timeout-*' \) |
            while read -r artifact; do
                echo "   FOUND $artifact"
                echo "   input (base64): $(base64 -w0 "$artifact")"
            done
        grep -E -m 5 "panicked at|^thread '|ERROR: (libFuzzer|AddressSanitizer)" "$log" | sed 's/^/   /' || true
    elif ((status != 0)); then
        # libFuzzer stopped without leaving an input behind: not a finding
        # but not a clean run either.
        failed=1
        crashes="error (exit $status)"
    fi
    rows+=("| $target | $elapsed | $executions | $rate | $crashes |")
done

echo
echo "| target | seconds | executions | exec/s | crashes |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo "(sanitizer: $sanitizer; ${seconds}s per target, one job each)"
exit "$failed"
