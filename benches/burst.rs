//! The burst benchmark of issue 3 ("Measure"): a train arrives and N phones
//! tap *Connect* within one second. How long until each can reach the
//! internet, and until all of them can?
//!
//! `cargo bench --bench burst` runs N = 100 and N = 1000, each in a fresh
//! venue (see `burst/venue.rs`): the built `portico` binary (the bench
//! profile's, which cargo builds alongside this target with the release
//! settings: `CARGO_BIN_EXE_portico`) with the nftables backend in a gateway
//! namespace, an upstream with a listener on 443, and N phones in one client
//! namespace. `BURST_N=100` (or `BURST_N=100,500`) picks other sizes;
//! `BURST_PROFILE=/tmp/p` also records `perf record -a -g` around each burst
//! (to `/tmp/p.n<N>`), to see where the time goes.
//!
//! For each N: every phone loads the splash and is checked to be held (443
//! refused); then the N POSTs of the accept form are spread evenly over one
//! second. Per phone, t0 is taken just before it opens the connection that
//! carries its POST, and t1 when, after the 303, its first TCP connect to
//! upstream's 443 succeeds; grant latency is t1 − t0. "All through after"
//! runs from the first phone's t0 to the last phone's t1. The number of nft
//! transactions is the change of Portico's
//! `portico_firewall_transactions_total` over the burst.
//!
//! Needs root, `ip` and `nft`; otherwise it prints SKIPPED and exits 0.
//! Namespaces, Portico and the listener are removed by drop guards, also
//! when a step fails or panics (Ctrl-C is not caught).

#![forbid(unsafe_code)]

#[path = "../tests/venue/netns.rs"]
mod netns;
#[path = "common/perf.rs"]
mod perf;
#[path = "burst/phones.rs"]
mod phones;
#[path = "../tests/venue/running.rs"]
mod running;
#[path = "burst/venue.rs"]
mod venue;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use perf::Profile;
use running::{admin_get, metric};
use venue::{ADMIN, Namespaces, NeighbourLimits, Plan, TABLE, Upstream, start_portico};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const SPREAD: Duration = Duration::from_secs(1);

/// One row of the table, and what explains it.
struct Row {
    n: usize,
    latencies: Vec<Duration>,
    all_through: Option<Duration>,
    failures: usize,
    transactions: Option<f64>,
    notes: Vec<String>,
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there are no options of our own.
    let sizes = match std::env::var("BURST_N") {
        Ok(list) => match list.split(',').map(|s| s.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>() {
            Ok(sizes) => sizes,
            Err(e) => {
                eprintln!("BURST_N={list:?}: wanted numbers separated by commas ({e})");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => vec![100, 1000],
    };
    if let Err(reason) = netns::preflight(&netns::TOOLS) {
        println!("SKIPPED burst benchmark: {reason:#}");
        return ExitCode::SUCCESS;
    }
    let mut rows = Vec::new();
    let mut failed = false;
    for n in sizes {
        eprintln!("== N = {n}");
        match catch_unwind(AssertUnwindSafe(|| measure(n))) {
            Ok(Ok(row)) => rows.push(row),
            Ok(Err(e)) => {
                println!("FAILED N = {n}: {e:#}");
                failed = true;
            }
            Err(panic) => {
                println!("FAILED N = {n}: panicked: {}", netns::panic_message(&*panic));
                failed = true;
            }
        }
    }
    report(&rows);
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn measure(n: usize) -> Result<Row> {
    let plan = Plan::new(n)?;
    let mut notes = Vec::new();
    // Locals drop in reverse order of declaration: the client runtime,
    // Portico and the listener go before the namespaces, the files and the
    // ARP limits, also on an early return. The ARP limits: one entry per
    // phone on each side, plus the rest of the machine.
    let limits = NeighbourLimits::at_least(2 * n + 256)?;
    let dir = tempfile::Builder::new().prefix("portico-burst-").tempdir()?;
    let built = Instant::now();
    let ns = Namespaces::build(&plan).context("building the venue")?;
    let wired = built.elapsed();
    let _upstream = Upstream::start(&ns.up)?;
    let portico = start_portico(BIN, &ns.gw, &plan, dir.path())?;
    let rt = phones::runtime(&ns.cl)?;
    let phones = phones::Phone::all(&plan);
    notes.push(format!(
        "setup: {n} veth phones wired in {:.2} s (`ip -batch`); venue and Portico ready after {:.2} s in all; {}",
        wired.as_secs_f64(),
        built.elapsed().as_secs_f64(),
        limits.describe()
    ));

    let warm = phones::warm_up(&rt, &plan, &phones);
    if let Some(problem) = warm.problems.first() {
        bail!("{} of {n} phones failed the warm-up; the first: {problem}", warm.problems.len());
    }
    let mut splash = warm.splash.clone();
    splash.sort();
    notes.push(format!(
        "before: all {} phones held (443 refused); splash GET while warming up ({} at a time): p50 {}, p99 {}",
        warm.held,
        phones::WARM_UP_AT_ONCE.min(n),
        ms(percentile(&splash, 50)),
        ms(percentile(&splash, 99))
    ));

    notes.push(format!("machine load average before the burst: {}", load_average()));
    let before = admin_get(&ns.gw, ADMIN, "/metrics")?.1;
    let profile = match std::env::var("BURST_PROFILE") {
        // The whole machine, so Portico, `nft`, the phones and the kernel's
        // packet path all show up.
        Ok(base) => Some(Profile::start(format!("{base}.n{n}"), &["-a"], "BURST_PROFILE is set")?),
        Err(_) => None,
    };
    let accepts = phones::burst(&rt, &plan, &phones, SPREAD);
    if let Some(profile) = profile {
        notes.push(format!("profile of the burst (perf record -a -g, adds overhead): {}", profile.stop()?));
    }
    // Portico counts a transaction before it answers its waiters, so the
    // counter is final once every phone has its answer.
    let after = admin_get(&ns.gw, ADMIN, "/metrics")?.1;
    let delta = |name: &str| Some(metric(&after, name)? - metric(&before, name)?);
    let transactions = delta("portico_firewall_transactions_total");

    let mut latencies: Vec<Duration> = accepts.iter().filter_map(|a| Some(a.t1?.duration_since(a.t0))).collect();
    latencies.sort();
    let failures: Vec<&str> = accepts.iter().filter_map(|a| a.error.as_deref()).collect();
    let first_t0 = accepts.iter().map(|a| a.t0).min();
    let last_t1 = accepts.iter().filter_map(|a| a.t1).max();
    let all_through = match (first_t0, last_t1, failures.is_empty()) {
        (Some(first), Some(last), true) => Some(last.duration_since(first)),
        _ => None,
    };

    // Where the time goes.
    let mut posts: Vec<Duration> = accepts.iter().filter_map(|a| Some(a.answered?.duration_since(a.t0))).collect();
    posts.sort();
    let mut after_303: Vec<Duration> = accepts.iter().filter_map(|a| Some(a.t1?.duration_since(a.answered?))).collect();
    after_303.sort();
    let refused: u32 = accepts.iter().map(|a| a.refused).sum();
    notes.push(format!(
        "split: POST → 303 p50 {} / p99 {}; 303 → upstream connected p50 {} / p99 {}; connects refused after a 303: {refused}",
        ms(percentile(&posts, 50)),
        ms(percentile(&posts, 99)),
        ms(percentile(&after_303, 50)),
        ms(percentile(&after_303, 99)),
    ));
    notes.push(waves(&accepts));
    if let (Some(sum), Some(count)) =
        (delta("portico_accept_duration_seconds_sum"), delta("portico_accept_duration_seconds_count"))
        && count > 0.0
    {
        notes.push(format!(
            "Portico's own accept time (neighbour lookup + nft + journal fsync), mean over {count} accepts: {:.2} ms; \
             {:.1} accepts per transaction",
            sum / count * 1e3,
            transactions.map_or(f64::NAN, |t| count / t.max(1.0))
        ));
    }
    if !failures.is_empty() {
        notes.push(format!("failures: {} of {n}; the first: {}", failures.len(), failures[0]));
        notes.push(format!("Portico's log, last lines:\n{}", portico.log_tail(10)));
    }
    notes.extend(costs(&ns, &plan));
    notes.push(fsync_cost(dir.path()));
    drop(rt);
    drop(portico);
    Ok(Row { n, latencies, all_through, failures: failures.len(), transactions, notes })
}

/// Costs Portico pays per accept and per transaction, timed in the gateway
/// namespace after the burst: the `nft` process (as Portico runs it) with
/// one element and with N, the drift check's listing of the whole table,
/// and one read of the ARP table.
fn costs(ns: &Namespaces, plan: &Plan) -> Vec<String> {
    let n = plan.n;
    let result = ns.gw.run(|| -> Result<Vec<String>> {
        let nft = |args: &[&str], script: &str| -> Result<(Duration, String)> {
            let started = Instant::now();
            let out = netns::pipe(Command::new("nft").args(args), script)?;
            let took = started.elapsed();
            let out = netns::succeeded(out, &format!("nft {}", args.join(" ")))?;
            Ok((took, String::from_utf8_lossy(&out.stdout).into_owned()))
        };
        let scratch = "table inet burst_scratch {\n set macs { type ether_addr; flags timeout; }\n}\n";
        nft(&["-f", "-"], scratch)?;
        let element = |i: usize| {
            format!(
                "add element inet burst_scratch macs {{ 02:ee:00:{:02x}:{:02x}:01 timeout 43200s }}\n",
                i >> 8,
                i & 0xff
            )
        };
        let mut one = Vec::new();
        for i in 0..5 {
            one.push(nft(&["-f", "-"], &element(i))?.0);
        }
        one.sort();
        let all: String = (0..n).map(|i| element(1000 + i)).collect();
        let (many, _) = nft(&["-f", "-"], &all)?;
        nft(&["-f", "-"], "delete table inet burst_scratch\n")?;
        let (listing, _) = nft(&["-j", "list", "table", "inet", TABLE], "")?;
        let (_, macs) = nft(&["list", "set", "inet", TABLE, "allowed_mac"], "")?;
        let (_, v4) = nft(&["list", "set", "inet", TABLE, "allowed_v4"], "")?;

        let started = Instant::now();
        let mut lines = 0;
        for _ in 0..20 {
            lines = std::fs::read_to_string("/proc/thread-self/net/arp")?.lines().count().saturating_sub(1);
        }
        let arp = started.elapsed() / 20;
        Ok(vec![
            format!(
                "grants in the kernel: {} by MAC, {} by IPv4 address (no neighbour entry)",
                macs.matches("expires").count(),
                v4.matches("expires").count()
            ),
            format!(
                "nft process cost: `nft -f -` with 1 element {} (median of 5), with {n} elements {}; \
                 drift check `nft -j list table` with the grants {}",
                ms(one[2]),
                ms(many),
                ms(listing)
            ),
            format!("neighbour lookup: one read of /proc/net/arp ({lines} entries) {}", ms(arp)),
        ])
    });
    result.unwrap_or_else(|e| vec![format!("(could not time the costs: {e:#})")])
}

/// The 303s arrive in waves, one per firewall transaction (and journal
/// commit): how many, how big, how far apart.
fn waves(accepts: &[phones::Accept]) -> String {
    let mut at: Vec<tokio::time::Instant> = accepts.iter().filter_map(|a| a.answered).collect();
    at.sort();
    let mut sizes = Vec::new();
    let mut gaps = Vec::new();
    for (i, t) in at.iter().enumerate() {
        match i.checked_sub(1).map(|p| t.duration_since(at[p])) {
            Some(gap) if gap <= Duration::from_millis(2) => *sizes.last_mut().expect("a wave") += 1,
            Some(gap) => {
                gaps.push(gap);
                sizes.push(1);
            }
            None => sizes.push(1),
        }
    }
    gaps.sort();
    format!(
        "303s arrived in {} waves (a gap over 2 ms starts a new one): largest {} answers, median gap {}, largest gap {}",
        sizes.len(),
        sizes.iter().max().unwrap_or(&0),
        ms(percentile(&gaps, 50)),
        ms(gaps.last().copied())
    )
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{} (1/5/15 min) on {nproc} CPUs", text.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

/// What one group commit of the grant journal costs on this disk: an
/// append and `fdatasync`, as `Journal::append` does, in the same folder.
fn fsync_cost(dir: &std::path::Path) -> String {
    use std::io::Write as _;
    let timed = || -> std::io::Result<Duration> {
        let path = dir.join("fsync-probe");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let mut took = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            file.write_all(&[b'x'; 120])?;
            file.sync_data()?;
            took.push(started.elapsed());
        }
        std::fs::remove_file(&path)?;
        took.sort();
        Ok(took[10])
    };
    match timed() {
        Ok(took) => {
            format!("journal: one append + fdatasync in the state folder's file system {} (median of 20)", ms(took))
        }
        Err(e) => format!("(could not time fdatasync: {e})"),
    }
}

fn report(rows: &[Row]) {
    println!();
    println!("## Burst: N phones accept within one second (Portico, nftables backend, release build)");
    println!();
    println!("| N | p50 | p99 | max | all through after | failures | nft transactions |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.n,
            ms(percentile(&row.latencies, 50)),
            ms(percentile(&row.latencies, 99)),
            ms(row.latencies.last().copied()),
            row.all_through.map_or("—".into(), |d| ms(Some(d))),
            row.failures,
            row.transactions.map_or("?".into(), |t| format!("{t}")),
        );
    }
    println!();
    println!(
        "Reference: openNDS 9.10 (Debian's package) needs about 260 ms per authorisation \
         (from issue 3; not measured here). Goal: p99 under 20 ms at N = 1000."
    );
    println!("Grant latency: POST connection opened → first TCP connect to upstream:443 that succeeds.");
    for row in rows {
        println!();
        println!("N = {}:", row.n);
        for note in &row.notes {
            println!("- {note}");
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

fn ms(d: impl Into<Option<Duration>>) -> String {
    match d.into() {
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        None => "—".into(),
    }
}
