//! The scale benchmark of issue 9 ("Measure"): an airport's worth of
//! grants. How fast does Portico accept as its table grows to N, how fast
//! does it start again with N restored, how much memory does it hold, and
//! what does it cost while nobody taps anything?
//!
//! `cargo bench --bench scale -- [--grants N] [--binary PATH]
//! [--idle-seconds S] [--more M] [--backends none,nftables]
//! [--fill-deadline S] [--perf PREFIX]` measures an already built binary (default
//! `target/release/portico`, from `cargo build --release`; `--binary`
//! measures another build, e.g. an older commit's, side by side). Defaults:
//! N = 100000, S = 60, M = 10000, both backends, fills stopped after 900 s.
//! `--perf PREFIX` also runs `perf record -g -p PID` on Portico during each
//! fill, to `PREFIX.<backend>.fill` and `PREFIX.<backend>.more` (a build
//! with symbols says more: the release profile strips them).
//!
//! For each backend, in a fresh network namespace with only loopback in it
//! (Portico, the phones and every `nft` and CLI command the benchmark runs
//! live there, so the only traffic is between addresses of 127.0.0.0/8
//! inside it, and the nftables table Portico owns is the namespace's own)
//! with the config of `scale/portico.rs` (request limits off, 12 h
//! sessions, state in a fresh temporary folder):
//! 1. start Portico on an empty store (start-up and RSS at 0 grants);
//! 2. fill N grants: N phones, 8 at a time, each from its own loopback
//!    address, tap *Connect* (`POST /` with the splash form's fields, see
//!    `scale/phones.rs`); every answer must be 303; accepts/s per tenth;
//! 3. SIGTERM (and wait until no child Portico left, such as an `nft`
//!    listing, is still running in the namespace: it would weigh on what
//!    follows), start again on the same state: time to the first `/healthz`
//!    200 and to the "Portico serving" line, RSS; `portico clients list`
//!    and `--json` timed, RSS after them;
//! 4. idle for S seconds: CPU of Portico and of the `nft` processes it ran
//!    and reaped (`/proc/PID/stat` utime + stime, cutime + cstime), RSS min
//!    and max; then peak RSS (VmHWM); for nftables, S seconds more while
//!    someone else commits to the ruleset once a second (an element added
//!    to the walled garden's set, as dnsmasq does at every fresh answer for
//!    a garden name), then one granted element
//!    deleted by hand, then the whole table, each timed until the granted
//!    address is back in `allowed_v4`;
//! 5. M more phones tap on top of the N restored.
//!
//! It prints one table per backend and the notes that explain it. Needs
//! root, `ip` and `nft`; otherwise it prints SKIPPED and exits 0. The
//! namespaces are the venue test's (`tests/venue/netns.rs`, included, with
//! its rules: only sockets and child processes are created inside one,
//! from a thread that entered it, never the benchmark's own threads
//! moved). They and Portico are removed by drop guards, also when a step
//! fails or panics, and the run ends by checking that no namespace of it is
//! left (Ctrl-C is not caught).

#![forbid(unsafe_code)]

#[path = "../tests/common/form.rs"]
mod form;
#[path = "../tests/venue/netns.rs"]
mod netns;
#[path = "common/perf.rs"]
mod perf;
#[path = "scale/phones.rs"]
mod phones;
#[path = "scale/portico.rs"]
mod portico;
#[path = "../tests/venue/running.rs"]
mod running;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use netns::Netns;
use perf::Profile;
use phones::Fill;
use portico::{Backend, Portico, TABLE, admin_get};
use running::metric;

/// How long a rebuilt table or a lost element may take to come back.
const REPAIR_WITHIN: Duration = Duration::from_secs(60);
/// How long children Portico left behind (an `nft` listing) may run on
/// after it exited before the next step starts anyway.
const SETTLE_WITHIN: Duration = Duration::from_secs(300);

/// The command line, validated.
struct Options {
    grants: usize,
    binary: PathBuf,
    idle: Duration,
    more: usize,
    backends: Vec<Backend>,
    fill_deadline: Duration,
    /// `perf record -g -p PID` around each fill, to files starting with this.
    perf: Option<String>,
}

const USAGE: &str = "usage: cargo bench --bench scale -- [--grants N] [--binary PATH] [--idle-seconds S] \
                     [--more M] [--backends none,nftables] [--fill-deadline S] [--perf PREFIX]";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            grants: 100_000,
            binary: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/portico"),
            idle: Duration::from_secs(60),
            more: 10_000,
            backends: vec![Backend::None, Backend::Nftables],
            fill_deadline: Duration::from_secs(900),
            perf: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            // `cargo bench` adds `--bench`.
            if flag == "--bench" {
                continue;
            }
            let mut value = || args.next().with_context(|| format!("{flag} needs a value\n{USAGE}"));
            let number = |v: &String| v.parse::<usize>().with_context(|| format!("{flag} {v:?}: wanted a number"));
            match flag.as_str() {
                "--grants" => options.grants = number(value()?)?,
                "--binary" => options.binary = PathBuf::from(value()?),
                "--idle-seconds" => options.idle = Duration::from_secs(number(value()?)? as u64),
                "--more" => options.more = number(value()?)?,
                "--fill-deadline" => options.fill_deadline = Duration::from_secs(number(value()?)? as u64),
                "--perf" => options.perf = Some(value()?.clone()),
                "--backends" => {
                    options.backends = value()?
                        .split(',')
                        .map(|b| match b.trim() {
                            "none" => Ok(Backend::None),
                            "nftables" => Ok(Backend::Nftables),
                            other => bail!("--backends: {other:?} is not none or nftables"),
                        })
                        .collect::<Result<_>>()?
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown option {other:?}\n{USAGE}"),
            }
        }
        ensure!(options.grants >= 10, "--grants {}: at least 10 (one per tenth)", options.grants);
        ensure!(
            options.grants + options.more <= phones::MAX_PHONES,
            "--grants + --more: at most {} phones (one loopback address each)",
            phones::MAX_PHONES
        );
        ensure!(!options.backends.is_empty(), "--backends: name at least one");
        ensure!(
            options.binary.is_file(),
            "--binary {}: no such file (build it with `cargo build --release`, or give --binary PATH)",
            options.binary.display()
        );
        options.binary = options.binary.canonicalize()?;
        Ok(options)
    }
}

/// One backend's numbers: the table's rows and the notes under it.
struct Report {
    backend: Backend,
    /// (what, at 0 or the first tenth, at N)
    rows: Vec<(String, String, String)>,
    notes: Vec<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("scale: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(reason) = netns::preflight(&netns::TOOLS) {
        println!("SKIPPED scale benchmark: {reason:#}");
        return ExitCode::SUCCESS;
    }
    let shown: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--bench").collect();
    let command = format!("cargo bench --bench scale -- {}", shown.join(" "));
    let prefix = netns::prefix("ps");
    let mut reports = Vec::new();
    let mut failed = false;
    for &backend in &options.backends {
        eprintln!("== backend {}, N = {}", backend.name(), options.grants);
        match catch_unwind(AssertUnwindSafe(|| measure(&options, backend, &prefix))) {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => {
                println!("FAILED backend {}: {e:#}", backend.name());
                failed = true;
            }
            Err(panic) => {
                println!("FAILED backend {}: panicked: {}", backend.name(), netns::panic_message(&*panic));
                failed = true;
            }
        }
    }
    print_reports(&options, &command, &reports);
    match netns::leftovers(&prefix) {
        Ok(left) if left.is_empty() => println!("cleanup: no namespace of {prefix} is left"),
        Ok(left) => {
            println!("FAILED cleanup: still there: {left:?}");
            failed = true;
        }
        Err(e) => {
            println!("FAILED cleanup: {e:#}");
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn measure(options: &Options, backend: Backend, prefix: &str) -> Result<Report> {
    let n = options.grants;
    let mut rows = Vec::new();
    let mut notes = vec![format!("machine before: {}", machine_load())];
    // Locals drop in reverse order of declaration: Portico goes before the
    // namespace, the namespace before the files.
    let dir = tempfile::Builder::new().prefix("portico-scale-").tempdir()?;
    let config = portico::write_config(dir.path(), backend)?;
    let short = match backend {
        Backend::None => "none",
        Backend::Nftables => "nft",
    };
    let ns = Netns::add(format!("{prefix}{short}"), &[]).context("creating the gateway namespace")?;
    let bin = &options.binary;

    // 1. An empty store.
    let (mut first, fresh) =
        Portico::start(bin, &ns, &config, dir.path().join("portico.1.log")).context("first start (empty store)")?;
    let fresh_rss = first.rss()?;

    // 2. The fill.
    let form = phones::splash_form(&ns)?;
    let before = admin_get(&ns, "/metrics")?.1;
    let profile = start_profile(options, backend, "fill", first.pid)?;
    let fill = phones::fill(&ns, &form, 0, n, options.fill_deadline).context("filling the grants")?;
    notes.extend(profiled(profile)?);
    first.check_alive().context("after the fill")?;
    let filled = fill.granted;
    let after = admin_get(&ns, "/metrics")?.1;
    notes.push(describe_fill("fill", &fill));
    notes.push(accept_costs(&before, &after));
    let grants = metric(&after, "portico_grants_active");
    notes.push(format!(
        "after the fill: portico_grants_active {}; RSS {}, peak (VmHWM) {} of the process that took them",
        grants.map_or("?".into(), |g| format!("{g}")),
        mib(first.rss()?),
        mib(first.peak()?)
    ));
    if let Some(why) = &fill.stopped {
        notes.push(format!("the fill stopped early ({why}): {filled} of {n} grants; the N column is at {filled}"));
    }
    ensure!(filled > 0, "no tap was answered 303: {}", fill.first_failure.as_deref().unwrap_or("?"));
    let segments = fill.segments();
    rows.push((
        "accepts/s".into(),
        segments.first().map_or("—".into(), |s| format!("{} (0–{})", rate(s.2), count(s.1))),
        segments.last().map_or("—".into(), |s| format!("{} ({}–{})", rate(s.2), count(s.0), count(s.1))),
    ));
    rows.push(("accepts/s over the whole fill".into(), "—".into(), rate(fill.rate())));
    let stopped_in = first.stop().context("stopping after the fill")?;
    notes.push(format!("SIGTERM to exit with {filled} grants: {}", ms(stopped_in)));
    drop(first);
    notes.extend(ns.settle(SETTLE_WITHIN)?);

    // 3. Start again on the same state.
    let (mut portico, restored) = Portico::start(bin, &ns, &config, dir.path().join("portico.2.log"))
        .context("start with the grants restored")?;
    let restored_rss = portico.rss()?;
    rows.push(("start-up to /healthz 200".into(), ms(fresh.healthy), ms(restored.healthy)));
    rows.push((
        "start-up to \"Portico serving\" logged".into(),
        fresh.serving.map_or("—".into(), ms),
        restored.serving.map_or("—".into(), ms),
    ));
    rows.push(("RSS after start".into(), mib(fresh_rss), mib(restored_rss)));
    let active = metric(&admin_get(&ns, "/metrics")?.1, "portico_grants_active");
    if active != Some(filled as f64) {
        notes.push(format!(
            "restored: portico_grants_active is {}, wanted {filled}",
            active.map_or("?".into(), |a| format!("{a}"))
        ));
    }

    let cfg = config.to_string_lossy();
    let bin_str = bin.to_string_lossy();
    let (out, list_took) = ns.exec_timed(&bin_str, &["clients", "list", "--config", &cfg], None)?;
    let out = netns::succeeded(out, "portico clients list")?;
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    let rss_after_list = portico.rss()?;
    let (out, json_took) = ns.exec_timed(&bin_str, &["clients", "list", "--json", "--config", &cfg], None)?;
    let out = netns::succeeded(out, "portico clients list --json")?;
    let in_json = String::from_utf8_lossy(&out.stdout).matches("\"ip\":").count();
    let rss_after_json = portico.rss()?;
    rows.push((
        "RSS after `clients list` / then `--json`".into(),
        "—".into(),
        format!("{} / {}", mib(rss_after_list), mib(rss_after_json)),
    ));
    rows.push(("`clients list` / `--json` time".into(), "—".into(), format!("{} / {}", ms(list_took), ms(json_took))));
    notes.push(format!(
        "`clients list` printed {listed} lines ({} bytes of JSON with --json, {in_json} clients)",
        out.stdout.len()
    ));

    // 4. Idle.
    let quiet = idle(&ns, &mut portico, options.idle, None)?;
    rows.push((
        format!("idle CPU over {} s, % of one core (of it `nft`)", options.idle.as_secs()),
        "—".into(),
        format!("{:.2} % ({:.2} %)", quiet.cpu + quiet.nft, quiet.nft),
    ));
    rows.push(("idle RSS min–max".into(), "—".into(), format!("{}–{}", mib(quiet.rss_min), mib(quiet.rss_max))));
    notes.extend(quiet.notes);
    rows.push(("peak RSS (VmHWM) after start, list and idle".into(), "—".into(), mib(portico.peak()?)));

    if backend == Backend::Nftables {
        // dnsmasq adds a walled-garden address at every fresh answer for a
        // garden name, each a transaction that moves the ruleset's
        // generation on: once a second here, a busy garden.
        let mut next = 0u32;
        let mut add = || -> Result<()> {
            next += 1;
            let element = format!("{{ 192.0.2.{} }}", next % 250 + 1);
            let (out, _) =
                ns.exec_timed("nft", &["add", "element", "inet", portico::TABLE, "garden_v4", &element], None)?;
            netns::succeeded(out, "nft add element (as dnsmasq)").map(|_| ())
        };
        let busy = idle(&ns, &mut portico, options.idle, Some(&mut add))?;
        rows.push((
            format!("CPU over {} s, someone else's change every second (of it `nft`)", options.idle.as_secs()),
            "—".into(),
            format!("{:.2} % ({:.2} %)", busy.cpu + busy.nft, busy.nft),
        ));
        notes.extend(busy.notes.into_iter().map(|n| format!("garden filling: {n}")));
        let (element, table) = repairs(&ns, &mut portico, &mut notes)?;
        rows.push(("one granted element deleted by hand: back after".into(), "—".into(), element));
        rows.push(("`nft delete table`: granted element back after".into(), "—".into(), table));
    }

    // 5. More on top.
    if options.more > 0 {
        let before = admin_get(&ns, "/metrics")?.1;
        let profile = start_profile(options, backend, "more", portico.pid)?;
        let more = phones::fill(&ns, &form, filled, options.more, options.fill_deadline).context("the taps on top")?;
        notes.extend(profiled(profile)?);
        portico.check_alive().context("after the taps on top")?;
        notes.push(describe_fill(&format!("{} more on top of {filled} restored", options.more), &more));
        notes.push(accept_costs(&before, &admin_get(&ns, "/metrics")?.1));
        rows.push((
            format!("accepts/s, {} more on top of {} restored", count(options.more), count(filled)),
            "—".into(),
            rate(more.rate()),
        ));
    }
    notes.push(format!("peak RSS (VmHWM) at the end: {}", mib(portico.peak()?)));
    let stopped_in = portico.stop().context("the final stop")?;
    notes.push(format!("SIGTERM to exit at the end: {}", ms(stopped_in)));
    notes.extend(ns.settle(SETTLE_WITHIN)?);
    notes.push(format!("machine after: {}", machine_load()));
    Ok(Report { backend, rows, notes })
}

/// One fill in a line: rate per tenth, failures.
fn describe_fill(what: &str, fill: &Fill) -> String {
    let tenths: Vec<String> =
        fill.segments().iter().map(|(a, b, r)| format!("{}–{}: {}", count(*a), count(*b), rate(*r))).collect();
    let mut line = format!(
        "{what}: {} of {} answered 303 in {:.1} s, {} overall; by tenth: {}",
        fill.granted,
        fill.count,
        fill.elapsed.as_secs_f64(),
        rate(fill.rate()),
        tenths.join(", ")
    );
    if fill.failures > 0 {
        line +=
            &format!("; {} taps FAILED, the first: {}", fill.failures, fill.first_failure.as_deref().unwrap_or("?"));
    }
    line
}

/// What Portico itself says a fill cost: firewall transactions and its
/// own accept time (neighbour lookup, firewall, journal), from /metrics.
fn accept_costs(before: &str, after: &str) -> String {
    let delta = |name: &str| Some(metric(after, name)? - metric(before, name)?);
    let show = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v}"));
    let transactions = delta("portico_firewall_transactions_total");
    let mean = match (delta("portico_accept_duration_seconds_sum"), delta("portico_accept_duration_seconds_count")) {
        (Some(sum), Some(n)) if n > 0.0 => format!("{:.2} ms", sum / n * 1e3),
        _ => "?".into(),
    };
    format!(
        "  Portico's view: {} accepts, {} firewall transactions, {} drift comparisons, mean accept time {mean} \
         (portico_accept_duration_seconds)",
        show(delta("portico_accept_duration_seconds_count")),
        show(transactions),
        show(delta("portico_firewall_comparisons_total")),
    )
}

struct Idle {
    /// Portico's own CPU and that of the `nft` children it reaped, in % of
    /// one core.
    cpu: f64,
    nft: f64,
    rss_min: u64,
    rss_max: u64,
    notes: Vec<String>,
}

/// Nobody taps for `span`: one sample a second.
/// Portico's CPU and memory over `span`, `each_second` (if any) run once a
/// second meanwhile.
fn idle(
    ns: &Netns,
    portico: &mut Portico,
    span: Duration,
    mut each_second: Option<&mut dyn FnMut() -> Result<()>>,
) -> Result<Idle> {
    let ticks_per_s = clock_ticks();
    let counters = |ns: &Netns| -> Result<(Option<f64>, Option<f64>)> {
        let text = admin_get(ns, "/metrics")?.1;
        Ok((metric(&text, "portico_firewall_repairs_total"), metric(&text, "portico_firewall_comparisons_total")))
    };
    let before = counters(ns)?;
    let started = Instant::now();
    let (own0, children0) = portico.cpu_ticks()?;
    let mut rss_min = u64::MAX;
    let mut rss_max = 0;
    let mut second = 0u64;
    while started.elapsed() < span {
        let rss = portico.rss()?;
        rss_min = rss_min.min(rss);
        rss_max = rss_max.max(rss);
        if let Some(f) = each_second.as_mut() {
            f()?;
        }
        second += 1;
        let next = started + Duration::from_secs(second);
        std::thread::sleep(next.saturating_duration_since(Instant::now()).min(span));
        portico.check_alive().context("while idle")?;
    }
    let (own1, children1) = portico.cpu_ticks()?;
    let took = started.elapsed().as_secs_f64();
    let rss = portico.rss()?;
    rss_min = rss_min.min(rss);
    rss_max = rss_max.max(rss);
    let after = counters(ns)?;
    let percent = |ticks: u64| ticks as f64 / ticks_per_s / took * 100.0;
    let moved = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{}", b - a),
        _ => "n/a".into(),
    };
    let notes = vec![format!(
        "idle {took:.1} s: Portico {:.2} %, reaped `nft` children {:.2} % of one core ({ticks_per_s} ticks/s); \
         portico_firewall_repairs_total moved by {}, portico_firewall_comparisons_total by {}",
        percent(own1 - own0),
        percent(children1 - children0),
        moved(before.0, after.0),
        moved(before.1, after.1),
    )];
    Ok(Idle { cpu: percent(own1 - own0), nft: percent(children1 - children0), rss_min, rss_max, notes })
}

/// The nftables backend's repairs: one granted element deleted by hand,
/// then the whole table; each timed until a granted address is in
/// `allowed_v4` again. Returns the two cells.
fn repairs(ns: &Netns, portico: &mut Portico, notes: &mut Vec<String>) -> Result<(String, String)> {
    let has = |addr: std::net::Ipv4Addr| {
        ns.exec_timed("nft", &["get", "element", "inet", TABLE, "allowed_v4", &format!("{{ {addr} }}")], None)
            .is_ok_and(|(out, _)| out.status.success())
    };
    let repairs_total =
        |ns: &Netns| -> Option<f64> { metric(&admin_get(ns, "/metrics").ok()?.1, "portico_firewall_repairs_total") };
    let (one, two) = (phones::address(0), phones::address(1));
    ensure!(has(one) && has(two), "granted addresses {one} and {two} are not in allowed_v4 before the repairs");
    let mut cells = Vec::new();
    for (addr, script) in [
        (one, format!("delete element inet {TABLE} allowed_v4 {{ {one} }}")),
        (two, format!("delete table inet {TABLE}")),
    ] {
        let repairs_before = repairs_total(ns);
        ns.nft(&[&script]).with_context(|| format!("`nft {script}`"))?;
        let started = Instant::now();
        let back = loop {
            if has(addr) {
                break Some(started.elapsed());
            }
            if started.elapsed() > REPAIR_WITHIN {
                break None;
            }
            portico.check_alive().with_context(|| format!("after `nft {script}`"))?;
            std::thread::sleep(Duration::from_millis(10));
        };
        let repairs_after = repairs_total(ns);
        notes.push(format!(
            "`nft {script}`: {addr} back in allowed_v4 after {}; portico_firewall_repairs_total {} → {}",
            back.map_or(format!("NOT within {REPAIR_WITHIN:?}"), ms),
            repairs_before.map_or("?".into(), |r| format!("{r}")),
            repairs_after.map_or("?".into(), |r| format!("{r}")),
        ));
        cells.push(back.map_or(format!("not within {} s", REPAIR_WITHIN.as_secs()), ms));
    }
    let elements = ns.nft(&["list", "set", "inet", TABLE, "allowed_v4"])?.matches("expires").count();
    notes.push(format!("after the repairs allowed_v4 holds {elements} elements"));
    Ok((cells.remove(0), cells.remove(0)))
}

/// `perf record -g -p PID` while one fill runs, when `--perf` asks.
fn start_profile(options: &Options, backend: Backend, what: &str, pid: u32) -> Result<Option<Profile>> {
    let Some(prefix) = &options.perf else {
        return Ok(None);
    };
    let path = format!("{prefix}.{}.{what}", backend.name());
    Profile::start(path, &["-p", &pid.to_string()], "--perf").map(Some)
}

/// The note that says where the profile of a fill went.
fn profiled(profile: Option<Profile>) -> Result<Option<String>> {
    let Some(profile) = profile else {
        return Ok(None);
    };
    Ok(Some(format!("profile of this fill (perf record -g -p, adds overhead): {}", profile.stop()?)))
}

fn print_reports(options: &Options, command: &str, reports: &[Report]) {
    println!();
    println!("## Scale: {} grants through the real accept path", count(options.grants));
    println!();
    println!("command: {command}");
    println!("binary: {} ({})", options.binary.display(), describe_binary(&options.binary));
    println!(
        "phones: {} at a time, each its own address from 127.1.0.0; POST / with the splash form; limits off; session 12h",
        phones::AT_ONCE
    );
    for report in reports {
        let n = count(options.grants);
        println!();
        println!("### backend {}", report.backend.name());
        println!();
        println!("| what | 0–{} grants | {n} grants |", count(options.grants / 10));
        println!("|---|---|---|");
        for (what, low, high) in &report.rows {
            println!("| {what} | {low} | {high} |");
        }
        println!();
        for note in &report.notes {
            println!("- {note}");
        }
    }
    println!();
}

fn describe_binary(path: &Path) -> String {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or("?".into(), |d| format!("{}", d.as_secs()));
    let version = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "no --version".into());
    format!("{version}; {size} bytes, modified at unix time {modified}")
}

fn machine_load() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let pressure = std::fs::read_to_string("/proc/pressure/cpu").unwrap_or_default();
    let some = pressure.lines().next().unwrap_or("").trim_start_matches("some ");
    format!(
        "load average {} on {} CPUs; CPU pressure {some}",
        load.split(' ').take(3).collect::<Vec<_>>().join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 { format!("{ms:.1} ms") } else { format!("{ms:.0} ms") }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn rate(per_s: f64) -> String {
    if per_s >= 1000.0 { format!("{:.2}k/s", per_s / 1000.0) } else { format!("{per_s:.0}/s") }
}

/// 100000 → "100k", 12345 → "12345".
fn count(n: usize) -> String {
    if n >= 1000 && n.is_multiple_of(1000) { format!("{}k", n / 1000) } else { n.to_string() }
}
