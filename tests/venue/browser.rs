//! The traveller's browser: headless chromium inside a phone's namespace,
//! driven by `tests/browser/venue-phone.mjs` (playwright-core) over a line
//! protocol, one command on its stdin, one JSON answer on its stdout, so a
//! scenario can interleave revokes and timing with real navigations.
//!
//! What must stay true: node and chromium form their own process group,
//! which is ended on drop (politely first, then `SIGKILL` to the group), so
//! no browser process keeps the phone's namespace alive.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::wiring::Phone;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/venue-phone.mjs");
const LAUNCH_WITHIN: Duration = Duration::from_secs(60);
/// Longer than the script's own navigation timeout, which answers first.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
const QUIT_WITHIN: Duration = Duration::from_secs(5);

/// What the browser said about one command (see venue-phone.mjs).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Answer {
    pub ok: bool,
    /// When the command began and ended, in ms on the script's clock.
    pub t0: f64,
    pub t1: f64,
    /// Unix time in ms at `t1`.
    pub wall: f64,
    pub url: String,
    pub status: Option<u16>,
    pub upstream: Option<String>,
    pub server: Option<String>,
    pub chain: Vec<String>,
    pub title: String,
    pub text: String,
    pub button: Option<String>,
    pub accept_ms: Option<f64>,
    pub error: Option<String>,
    pub version: Option<String>,
}

impl Answer {
    /// Whether this is the venue upstream's own page (not Portico's).
    pub fn is_upstream(&self) -> bool {
        self.ok && self.status == Some(200) && self.upstream.is_some()
    }

    /// Whether the browser ended on the portal's splash at `public_url`.
    pub fn on_splash(&self, public_url: &str) -> bool {
        self.ok && self.status == Some(200) && self.upstream.is_none() && self.url.starts_with(public_url)
    }

    /// What the browser saw, in one line, for a failure message.
    pub fn describe(&self) -> String {
        if let Some(error) = &self.error {
            return format!("error at {}: {error}", self.url);
        }
        let who = if self.upstream.is_some() { "upstream" } else { "not upstream (Portico?)" };
        let mut hops: Vec<String> = self.chain.clone();
        hops.push(format!("{} {}", self.status.map_or("?".into(), |s| s.to_string()), self.url));
        let text: String = self.text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(80).collect();
        format!(
            "{} from {who} via {}, title {:?}, text {text:?}",
            hops.join(" → "),
            self.server.as_deref().unwrap_or("?"),
            self.title
        )
    }
}

/// A running browser in one phone.
pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: Receiver<String>,
    pub label: &'static str,
    pub version: String,
}

impl Browser {
    /// Starts node and chromium in `phone`'s namespace with a fresh profile
    /// in `profile`; node's and chromium's stderr go to `log`. Waits until
    /// chromium is up.
    pub fn launch(phone: &Phone, profile: &Path, log: &Path) -> Result<Browser> {
        std::fs::create_dir_all(profile)?;
        let mut child = phone
            .ns
            .command("node", &[SCRIPT, &profile.to_string_lossy()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .process_group(0)
            .spawn()
            .context("spawning node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut browser = Browser { child, stdin, answers, label: phone.label, version: String::new() };
        let ready = browser.answer(LAUNCH_WITHIN).context("chromium did not start")?;
        browser.version = ready.version.unwrap_or_default();
        Ok(browser)
    }

    /// Navigates to `url` and waits for the page's `load`.
    pub fn goto(&mut self, url: &str) -> Result<Answer> {
        self.ask(&format!("goto {url}"))
    }

    /// Clicks the submit button of the page's post form (the splash's
    /// *Connect*) and waits for the navigation it causes.
    pub fn click_connect(&mut self) -> Result<Answer> {
        self.ask("click")
    }

    fn ask(&mut self, command: &str) -> Result<Answer> {
        let stdin = self.stdin.as_mut().context("the browser is closed")?;
        writeln!(stdin, "{command}").and_then(|()| stdin.flush()).context("the browser is gone")?;
        self.answer(ANSWER_WITHIN).with_context(|| format!("browser of phone {}: {command}", self.label))
    }

    fn answer(&mut self, within: Duration) -> Result<Answer> {
        match self.answers.recv_timeout(within) {
            Ok(line) => serde_json::from_str(&line).with_context(|| format!("unreadable answer {line:?}")),
            Err(RecvTimeoutError::Timeout) => bail!("no answer within {within:?}"),
            Err(RecvTimeoutError::Disconnected) => bail!("the browser exited: {:?}", self.child.try_wait()),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "quit");
        }
        let deadline = Instant::now() + QUIT_WITHIN;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of node and chromium (its renderers, zygote and
        // utility processes share the group).
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
