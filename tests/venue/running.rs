//! A `portico run` inside a network namespace, as the venue test and the
//! benchmarks start it: its output in a log file, waited for until it is
//! ready, stopped with SIGTERM and a deadline, killed and reaped on drop;
//! and its admin listener asked from inside the namespace. Shared by the
//! venue test (`portico.rs`) and the benchmarks (`benches/burst/venue.rs`,
//! `benches/scale/portico.rs`, which include this file).
//!
//! What must stay true: the child's pid is Portico's own (both ways of
//! starting it exec it in place), so a signal reaches Portico itself; and
//! nothing outlives its [`Running`]: a process left inside a namespace
//! would keep it alive after `ip netns del`.

#![allow(dead_code)] // the venue and each benchmark use a different part of this

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns::Netns;

/// How the binary enters the namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `ip netns exec NS BIN …`, which also gives it the namespace's own
    /// `/sys`: Portico reads its interfaces' `ifindex` there.
    IpNetnsExec,
    /// Spawned from a thread inside the namespace: nothing comes between
    /// the spawn and Portico's start (`ip netns exec` costs milliseconds a
    /// start-up time would count), but `/sys` stays the root namespace's,
    /// which is right only for an interface both have (`lo`).
    Thread,
}

/// The binary, running; killed and reaped on drop.
pub struct Running {
    child: Option<Child>,
    pub pid: u32,
    pub log: PathBuf,
    /// Just before the spawn: start-up times count from here.
    started: Instant,
}

impl Running {
    /// Spawns `bin run --config CONFIG` in `ns` with `RUST_LOG=log_filter`,
    /// its output appended to `log`; does not wait for it.
    pub fn start(ns: &Netns, entry: Entry, bin: &Path, config: &Path, log_filter: &str, log: &Path) -> Result<Running> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let spawn = |mut cmd: Command| -> Result<(Child, Instant)> {
            cmd.env("RUST_LOG", log_filter).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out.try_clone()?);
            let started = Instant::now();
            let child = cmd.spawn().with_context(|| format!("spawning {}", bin.display()))?;
            Ok((child, started))
        };
        let (child, started) = match entry {
            Entry::IpNetnsExec => {
                spawn(ns.command(&bin.to_string_lossy(), &["run", "--config", &config.to_string_lossy()]))?
            }
            Entry::Thread => ns.run(|| {
                let mut cmd = Command::new(bin);
                cmd.args(["run", "--config"]).arg(config);
                spawn(cmd)
            })?,
        };
        let pid = child.id();
        Ok(Running { child: Some(child), pid, log: log.to_owned(), started })
    }

    /// Polls `ready` every `tick` until it says yes (the time since the
    /// spawn), Portico exits, or `within` has passed since the spawn (then
    /// it is killed); `what` names what was waited for.
    pub fn wait_until(
        &mut self,
        what: &str,
        within: Duration,
        tick: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<Duration> {
        loop {
            if ready() {
                return Ok(self.started.elapsed());
            }
            let child = self.child.as_mut().context("portico is not running")?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!("portico exited during start-up ({status}):\n{}", self.log_tail(20));
            }
            if self.started.elapsed() > within {
                self.kill()?;
                bail!("{what} within {within:?}:\n{}", self.log_tail(20));
            }
            std::thread::sleep(tick);
        }
    }

    /// Just before the spawn.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether Portico is still running.
    pub fn is_running(&mut self) -> Result<bool> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// Fails, with the log's end, if Portico has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!("portico exited ({status}):\n{}", self.log_tail(20));
        }
        Ok(())
    }

    /// Sends `signal` (SIGHUP: reload the config).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        self.child.as_ref().context("portico is not running")?;
        kill(Pid::from_raw(self.pid as i32), signal).with_context(|| format!("sending {signal} to portico"))
    }

    /// SIGTERM, and waits for the exit: its status and how long the stop
    /// took (`None` if it was not running); `kill -9` if it overstays
    /// `within`, which is an error.
    pub fn stop(&mut self, within: Duration) -> Result<Option<(ExitStatus, Duration)>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let started = Instant::now();
        kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM).context("sending SIGTERM to portico")?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some((status, started.elapsed())));
            }
            if started.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                bail!("portico did not stop within {within:?} of SIGTERM:\n{}", self.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `kill -9`, and reap it.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// One HTTP/1.1 GET on a fresh connection with `Connection: close`, read
/// to the end, each step within `limit`: the status and the body. Call it
/// from a thread inside the namespace.
pub fn get(to: SocketAddr, path: &str, limit: Duration) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&to, limit)?;
    stream.set_read_timeout(Some(limit))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {to}\r\nAccept-Language: vi\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// `GET path` on the admin listener at `admin`, from inside `ns`: the
/// status and the body. Each step within 10 s.
pub fn admin_get(ns: &Netns, admin: &str, path: &str) -> Result<(u16, String)> {
    let admin: SocketAddr = admin.parse().with_context(|| format!("the admin address {admin:?}"))?;
    ns.run(|| get(admin, path, Duration::from_secs(10))).with_context(|| format!("GET {path} on the admin listener"))
}

/// Whether `/healthz` on the admin listener answers 200; asked from the
/// calling thread, which must be inside the namespace.
pub fn healthy(admin: SocketAddr) -> bool {
    get(admin, "/healthz", Duration::from_millis(200)).is_ok_and(|(status, _)| status == 200)
}

/// The value of the first sample of `name` in a Prometheus text body.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
