//! The built `portico` binary started on a config file and waited for
//! until its start-up line ("Portico serving portal=… admin=…") says where
//! it serves, which is how a test that runs the real process finds the
//! ports the kernel picked.
//!
//! What must stay true: its log is drained on a thread of its own for as
//! long as it runs, whether or not anyone reads the lines, so it never
//! blocks on a full pipe.

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long Portico may take to say it is serving.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A started `portico run`.
pub struct Started {
    pub child: Child,
    pub portal: SocketAddr,
    pub admin: SocketAddr,
    /// The lines it logs after the start-up line.
    pub log: Receiver<String>,
}

/// The lines of a child's output, each with its `\n`, read on their own
/// thread until the output ends; lines nobody receives are dropped.
pub fn lines(from: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line + "\n");
        }
    });
    rx
}

/// Starts the built binary on `config_file` and waits for its start-up
/// line. If it exits before it, what it logged; if it says nothing for
/// 30 s, it is killed and the test fails.
pub fn spawn_binary(config_file: &Path) -> Result<Started, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["run", "--config"])
        .arg(config_file)
        .env("RUST_LOG", "portico=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the portico binary");
    let log = lines(child.stderr.take().unwrap());
    let deadline = Instant::now() + START_DEADLINE;
    let mut seen = String::new();
    loop {
        match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("Portico serving") => {
                let addr = |key: &str| -> SocketAddr {
                    let value = line.split(&format!("{key}=")).nth(1).and_then(|s| s.split_whitespace().next());
                    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {key}= in {line}"))
                };
                let (portal, admin) = (addr("portal"), addr("admin"));
                return Ok(Started { child, portal, admin, log });
            }
            Ok(line) => seen.push_str(&line),
            Err(RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                return Err(seen);
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Portico did not say it was serving within {START_DEADLINE:?}:\n{seen}");
            }
        }
    }
}

/// [`spawn_binary`], which must start: the process with its portal and
/// admin addresses.
pub fn start_binary(config_file: &Path) -> (Child, SocketAddr, SocketAddr) {
    let started = spawn_binary(config_file).unwrap_or_else(|log| panic!("Portico did not start:\n{log}"));
    (started.child, started.portal, started.admin)
}
