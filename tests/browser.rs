//! The browser test of issue 4: every page in every language, in Debian's
//! headless chromium, through `tests/browser/pages.mjs` (playwright-core and
//! axe-core from npm, pinned in `tests/browser/package-lock.json`), and the
//! operator's page on the admin listener in both its languages (issue 12).
//!
//! This file starts the built `portico` binary on a free loopback port with
//! the `none` firewall backend (its admin listener on another, read from its
//! start-up line), runs the node script against it, prints what
//! the script prints (page weights, failures, the screenshot folder) and
//! stops Portico again, even when the script fails. Where node, chromium,
//! the CJK fonts or the npm packages are missing the test says SKIPPED, and
//! under `CI=true` that is a failure: `.ci/run` installs all of them.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use common::{Started, TestPortal, lines};

const CHROMIUM: &str = "/usr/bin/chromium";
const CJK_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
const HOW_TO_INSTALL: &str = "run: apt-get install chromium fonts-noto-cjk; npm ci --prefix tests/browser";
/// The script takes about a minute on two cores; past this it is stuck.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tool() -> Option<String> {
    let node = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => return Some("node is not installed".into()),
    };
    // playwright-core needs node 20 or later.
    let major: u32 = node.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 20 {
        return Some(format!("node {node} is older than 20, which playwright-core needs"));
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing"));
    }
    if !Path::new(CJK_FONT).exists() {
        return Some(format!("{CJK_FONT} is missing, so CJK pages would render as boxes"));
    }
    for package in ["playwright-core", "axe-core"] {
        if !repo().join("tests/browser/node_modules").join(package).is_dir() {
            return Some(format!("tests/browser/node_modules/{package} is missing"));
        }
    }
    None
}

/// A running `portico run`; killed when dropped, so a failing assertion
/// never leaves it behind.
struct Portico {
    started: Started,
    base: String,
    /// The admin listener's base URL: the operator's page.
    admin: String,
}

impl Drop for Portico {
    fn drop(&mut self) {
        let _ = self.started.child.kill();
        let _ = self.started.child.wait();
    }
}

impl Portico {
    /// Starts Portico on a free port. The port is found by binding port 0
    /// and letting it go, because `public_url` must name it; if another
    /// process takes it in between, start-up fails and we try another.
    fn start(dir: &Path) -> Portico {
        let mut last = String::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = dir.join("portico.toml");
            std::fs::write(&config, config_text(port, &dir.join("state"))).unwrap();
            match common::spawn_binary(&config) {
                Ok(started) => {
                    assert_eq!(started.portal, ([127, 0, 0, 1], port).into(), "the portal's address");
                    let admin = format!("http://{}/", started.admin);
                    return Portico { started, base: format!("http://127.0.0.1:{port}/"), admin };
                }
                Err(log) => last = log,
            }
        }
        panic!("Portico did not start:\n{last}");
    }

    fn log(&self) -> String {
        self.started.log.try_iter().collect()
    }
}

/// One browser at one address loads every page in every language back to
/// back, far more than a phone's join; the rate limits are tested elsewhere.
fn config_text(port: u16, state: &Path) -> String {
    TestPortal::builder(state)
        .venue("name = \"Ga Buôn Ma Thuột\"\nkind = \"station\"\nprovince = \"Đắk Lắk\"")
        .portal("session = \"12h\"\ncampaign = \"bluezone\"")
        .limits("per_client_rps = 0")
        .config_text(port)
}

/// Where the screenshots go: `target/browser-screenshots`, beside the
/// other build output and ignored by git.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target dir").join("browser-screenshots")
}

#[test]
fn every_page_in_every_language_passes_in_chromium() {
    if let Some(reason) = missing_tool() {
        let message = format!("SKIPPED browser test: {reason} ({HOW_TO_INSTALL})");
        // CI installs everything, so there a skip would hide a broken page.
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        // Straight to stderr, past libtest's capture: a skip must be seen.
        let _ = writeln!(std::io::stderr(), "{message}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let portico = Portico::start(dir.path());
    let out = screenshots();
    let _ = std::fs::remove_dir_all(&out);

    let mut node = Command::new("node")
        .arg(repo().join("tests/browser/pages.mjs"))
        .arg(&portico.base)
        .arg(&out)
        .arg(&portico.admin)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let stdout = lines(node.stdout.take().unwrap());
    let stderr = lines(node.stderr.take().unwrap());
    let deadline = Instant::now() + SCRIPT_DEADLINE;
    // println!, not inherited output: libtest shows it with --nocapture or
    // when the test fails, and keeps a passing run quiet.
    loop {
        match stdout.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => print!("{line}"),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                let _ = node.kill();
                let _ = node.wait();
                panic!("the browser test ran past {SCRIPT_DEADLINE:?}; Portico's log:\n{}", portico.log());
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        for line in stderr.try_iter() {
            eprint!("{line}");
        }
    }
    let status = node.wait().unwrap();
    for line in stderr.try_iter() {
        eprint!("{line}");
    }
    assert!(
        status.success(),
        "the browser test failed ({status}); screenshots in {}; Portico's log:\n{}",
        out.display(),
        portico.log()
    );
    println!("browser test passed; screenshots in {}", out.display());
}
