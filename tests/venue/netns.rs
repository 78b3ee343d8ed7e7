//! Network namespaces with names unique to this run, removed again even
//! when a step fails or panics. Shared by the venue test (see `wiring.rs`
//! for how it wires them) and the benchmarks (`benches/burst.rs`,
//! `benches/scale.rs`, which include this file), so the rules below hold
//! for all of them.
//!
//! What must stay true:
//! - every namespace a run creates is deleted by a `Drop`, so an early
//!   return or a panic anywhere still cleans up; a process still inside at
//!   that point is reported, counted ([`LINGERING`]) and killed, since it
//!   would keep the namespace alive unseen;
//! - veths are created directly inside the namespaces (`ip -n NS link add
//!   ... peer ... netns OTHER`), so none ever exists in the root namespace
//!   and deleting a namespace takes its veths with it;
//! - only sockets and child processes are ever created inside a namespace,
//!   from a thread that entered it ([`Netns::run`], [`enter`]); a socket
//!   keeps the namespace it was made in, so all I/O afterwards happens on
//!   ordinary threads, and the caller's own thread is never moved.

#![allow(dead_code)] // the venue and each benchmark use a different part of this

use std::fs::File;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sched::{CloneFlags, setns};

/// One network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `ip netns add NAME` with loopback up, then `sysctl -w` of `settings`
    /// inside it (none: nothing else is changed).
    pub fn add(name: String, settings: &[&str]) -> Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        if !settings.is_empty() {
            ns.sysctl(settings)?;
        }
        Ok(ns)
    }

    /// Runs `f` on a fresh thread that has entered this namespace. Network
    /// namespace membership is per thread, so the caller's thread is never
    /// moved; sockets and processes `f` creates belong to this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            let thread = s.spawn(|| {
                enter(&self.name);
                f()
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// `ip -n NAME ARGS...`, failing with its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `ip -n NAME -batch -`: many commands for the price of one process.
    pub fn batch(&self, script: &str) -> Result<()> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name, "-batch", "-"]);
        let out = pipe(&mut cmd, script)?;
        succeeded(out, &format!("ip -n {} -batch", self.name)).map(drop)
    }

    /// `ip netns exec NAME PROGRAM ARGS...`, whatever its exit status.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program, args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {program} in {}", self.name))
    }

    /// The command line that runs `program` inside this namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }

    /// Runs `program` from a thread inside the namespace, with `input` on
    /// its stdin if given, and waits for it; its output, whatever its exit
    /// status, and the time from spawn to exit. Unlike [`Self::exec`] no
    /// `ip netns exec` comes between (it also remounts /sys), so the time
    /// is the program's own.
    pub fn exec_timed(&self, program: &str, args: &[&str], input: Option<&str>) -> Result<(Output, Duration)> {
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

    /// `nft ARGS...` in the namespace; its stdout, or an error with its stderr.
    pub fn nft(&self, args: &[&str]) -> Result<String> {
        let out = succeeded(self.exec("nft", args)?, &format!("nft {}", args.join(" ")))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn sysctl(&self, settings: &[&str]) -> Result<()> {
        let mut args = vec!["-q", "-w"];
        args.extend_from_slice(settings);
        succeeded(self.exec("sysctl", &args)?, &format!("sysctl in {}", self.name)).map(drop)
    }

    /// Processes inside the namespace, as (pid, command line).
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
    /// that what a stopped program left running does not weigh on the next
    /// step; what outlived it and for how long, if anything did. Whatever
    /// is still there at `limit` (descendants of this run) is killed by pid.
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
                    kill(*pid);
                }
                return Ok(Some(format!("{left:?} outlived Portico by more than {limit:?} and were killed")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // A process still inside would keep the namespace alive after
        // `ip netns del` without anyone seeing it: every process the run
        // starts must be gone by now. Say so, count it as a failure of the
        // cleanup check, and end it (only our own processes live here).
        for (pid, cmdline) in self.processes().unwrap_or_default() {
            eprintln!("warning: process {pid} ({cmdline}) was still in namespace {}", self.name);
            LINGERING.fetch_add(1, Ordering::Relaxed);
            kill(pid);
        }
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e:#}", self.name);
        }
    }
}

/// How many processes were found still inside a namespace being deleted.
pub static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// Moves the calling thread into namespace `name`. Panics: a thread that
/// is in the wrong namespace must not go on to test or measure anything.
pub fn enter(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    setns(file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("entering {name}: {e}"));
}

/// `<tag><pid>`: every namespace of this run starts with it.
pub fn prefix(tag: &str) -> String {
    format!("{tag}{}", std::process::id())
}

/// Our namespaces that `ip netns list` still shows, and links in the root
/// namespace that carry our prefix (none should: see the module note).
pub fn leftovers(prefix: &str) -> Result<Vec<String>> {
    // `pv81` must not claim `pv811g`, another run's namespace.
    let ours =
        |name: &str| name.strip_prefix(prefix).is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
    let mut found = Vec::new();
    let namespaces = Command::new("ip").args(["netns", "list"]).output().context("running ip netns list")?;
    for line in String::from_utf8_lossy(&namespaces.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if ours(name) {
            found.push(format!("namespace {name}"));
        }
    }
    // `5: name@if4: <...`
    let links = Command::new("ip").args(["-o", "link", "show"]).output().context("running ip link show")?;
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        let name = line.split(':').nth(1).unwrap_or("").trim();
        let name = name.split('@').next().unwrap_or(name);
        if ours(name) {
            found.push(format!("link {name}"));
        }
    }
    Ok(found)
}

/// Why this machine cannot make namespaces and nftables tables, if it
/// cannot: not root, or one of `tools` (program, an argument it answers
/// with success, the package that has it) missing.
pub fn preflight(tools: &[(&str, &str, &str)]) -> Result<()> {
    let uid = Command::new("id").arg("-u").output().context("running id -u")?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        bail!("not root (network namespaces and nftables need root)");
    }
    for (tool, arg, package) in tools {
        let found =
            Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
        if !found {
            bail!("`{tool}` is missing (install {package})");
        }
    }
    Ok(())
}

/// What the namespaces themselves need: `ip` and `nft`.
pub const TOOLS: [(&str, &str, &str); 2] = [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")];

/// A panic caught by `catch_unwind`, as the line a report prints.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Runs `cmd` with `input` on its stdin and collects its output.
pub fn pipe(cmd: &mut Command, input: &str) -> Result<Output> {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    child.stdin.take().context("no stdin")?.write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?)
}

/// `out`, if its program succeeded; otherwise an error naming `what`, the
/// exit status and the program's stderr.
pub fn succeeded(out: Output, what: &str) -> Result<Output> {
    if !out.status.success() {
        bail!("{what}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

/// `ip ARGS...` in the root namespace, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().context("running ip")?;
    succeeded(out, &format!("ip {}", args.join(" "))).map(drop)
}

/// SIGKILL to one of this run's own processes.
fn kill(pid: u32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
}
