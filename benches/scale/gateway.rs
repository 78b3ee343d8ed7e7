//! The gateway under test: one network namespace per backend, with only
//! loopback in it. Portico, the phones and every `nft` and CLI command the
//! benchmark runs live in that namespace, so the only traffic is between
//! addresses of 127.0.0.0/8 inside it, and the nftables table Portico owns
//! is the namespace's own.
//!
//! What must stay true (as in tests/venue/netns.rs and benches/burst/venue.rs,
//! copied, not shared): the namespace is deleted by a `Drop`, so an error or
//! a panic still cleans up; only sockets and child processes are created
//! inside it, from a thread that entered it, never the benchmark's own
//! threads moved. A child spawned from such a thread inherits the
//! namespace, which spares the measurement the few milliseconds of
//! `ip netns exec` (it also remounts /sys).

use std::fs::File;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sched::{CloneFlags, setns};

/// One network namespace with loopback up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn add(name: String) -> Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `f` on a fresh thread that has entered this namespace; sockets
    /// and processes it creates belong to this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                enter(&self.name);
                f()
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `program` inside the namespace and waits for it; the time is
    /// from spawn to exit.
    pub fn exec(&self, program: &str, args: &[&str], input: Option<&str>) -> Result<(Output, Duration)> {
        self.run(|| -> Result<(Output, Duration)> {
            let started = Instant::now();
            let mut child = Command::new(program)
                .args(args)
                .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("running {program} in {}", self.name))?;
            if let Some(input) = input {
                child.stdin.take().context("no stdin")?.write_all(input.as_bytes())?;
            }
            let out = child.wait_with_output()?;
            Ok((out, started.elapsed()))
        })
    }

    /// Processes still inside the namespace, as (pid, command line): after
    /// Portico has exited, only children it left behind.
    pub fn processes(&self) -> Result<Vec<(u32, String)>> {
        use std::os::unix::fs::MetadataExt as _;
        let path = format!("/var/run/netns/{}", self.name);
        let want = format!("net:[{}]", std::fs::metadata(&path).with_context(|| format!("reading {path}"))?.ino());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").context("reading /proc")?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // A process may end between the listing and the look.
            let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
                continue;
            };
            if ns.to_string_lossy() == want {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline: Vec<String> = cmdline
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into())
                    .collect();
                found.push((pid, cmdline.join(" ")));
            }
        }
        Ok(found)
    }

    /// Waits, up to `limit`, until no process is left in the namespace, so
    /// that what Portico left running does not weigh on the next step; what
    /// outlived it and for how long, if anything did. Whatever is still
    /// there at `limit` (descendants of this benchmark) is killed by pid.
    pub fn settle(&self, limit: Duration) -> Result<Option<String>> {
        let started = Instant::now();
        let first = self.processes()?;
        if first.is_empty() {
            return Ok(None);
        }
        loop {
            let left = self.processes()?;
            if left.is_empty() {
                return Ok(Some(format!("{first:?} outlived Portico by {:.1} s", started.elapsed().as_secs_f64())));
            }
            if started.elapsed() > limit {
                for (pid, _) in &left {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::SIGKILL);
                }
                return Ok(Some(format!("{left:?} outlived Portico by more than {limit:?} and were killed")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nft ARGS...` in the namespace; its stdout, or an error with its stderr.
    pub fn nft(&self, args: &[&str]) -> Result<String> {
        let (out, _) = self.exec("nft", args, None)?;
        let out = succeeded(out, &format!("nft {}", args.join(" ")))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e:#}", self.name);
        }
    }
}

/// Moves the calling thread into namespace `name`. Panics: a thread in the
/// wrong namespace must not go on to measure anything.
pub fn enter(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    setns(file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("entering {name}: {e}"));
}

/// `ps<pid>`: this run's namespaces start with it.
pub fn prefix() -> String {
    format!("ps{}", std::process::id())
}

/// This run's namespaces that `ip netns list` still shows.
pub fn leftovers(prefix: &str) -> Result<Vec<String>> {
    // `ps81` must not claim `ps811none`, another run's namespace.
    let ours =
        |name: &str| name.strip_prefix(prefix).is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
    let out = Command::new("ip").args(["netns", "list"]).output().context("running ip netns list")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| ours(name))
        .map(str::to_owned)
        .collect())
}

/// `ip ARGS...` in the root namespace, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().context("running ip")?;
    succeeded(out, &format!("ip {}", args.join(" "))).map(drop)
}

pub fn succeeded(out: Output, what: &str) -> Result<Output> {
    if !out.status.success() {
        bail!("{what}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}
