//! `/metrics` as Prometheus reads it: a whole Portico in-process is asked
//! for a splash, a probe and an accept, and its scrape passes the real
//! `promtool check metrics` with nothing to say, counts exactly those
//! requests, and carries the venue, the build, the reload, the store, the
//! TLS certificate and the process on their own series. `/healthz` answers
//! 503 while the grant store refuses writes, and 200 again once it takes
//! them.

#![forbid(unsafe_code)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestPortal;
use hyper::StatusCode;

const VENUE: &str = r#"Bến xe "Miền Đông""#;
/// The certificate's notAfter: 2031-03-01T00:00:00Z.
const EXPIRES: u64 = 1_930_089_600;

/// Runs `promtool check metrics` on `text`, which must print nothing and
/// exit 0. Where promtool is not installed it says so and passes, except
/// under CI, where it must be installed.
fn promtool(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            common::skip("promtool not installed (apt-get install prometheus)");
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.is_empty(), "promtool check metrics ({}):\n{said}\non:\n{text}", out.status);
}

/// The value of the sample whose name and labels are exactly `series`.
fn value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.rsplit_once(' ').filter(|(s, _)| *s == series))
        .map(|(_, v)| v)
}

fn has(text: &str, series: &str, expected: &str) {
    assert_eq!(value(text, series), Some(expected), "{series} in:\n{text}");
}

/// A Portico with a province, a kind and `[tls]` (its certificate
/// expiring at [`EXPIRES`]); the pages are served over plain http too.
async fn start(dir: &Path) -> TestPortal {
    let (cert, key) = common::write_certificate(dir, &common::certificate("portal.test", Some((2031, 3, 1))));
    let venue = VENUE.replace('"', "\\\"");
    let portal = TestPortal::builder(&dir.join("state"))
        .venue(&format!("name = \"{venue}\"\nkind = \"bus\"\nprovince = \"Hồ Chí Minh\""))
        .portal("")
        .tls(&cert, &key)
        .start()
        .await;
    let health = portal.admin_get("/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (StatusCode::OK, "ok\n"), "a fresh start is healthy");
    portal
}

/// Scrapes until `series` has `expected` (a reload is asynchronous).
async fn wait_for(portal: &TestPortal, series: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = portal.admin_get("/metrics").await.text();
        if value(&text, series) == Some(expected) {
            return text;
        }
        assert!(Instant::now() < deadline, "never saw {series} {expected} in:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_scrape_is_lint_clean_and_counts_what_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let portico = start(dir.path()).await;
    assert_eq!(portico.page("/", &[]).await.status, StatusCode::OK);
    let probe = portico.get("connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(probe.status, StatusCode::FOUND, "a device without a grant is sent to the portal");
    // The accept loads the splash again, as a phone does, then posts its form.
    assert_eq!(portico.accept().await.status, StatusCode::SEE_OTHER);

    let scrape = portico.admin_get("/metrics").await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert_eq!(scrape.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    let text = scrape.text();
    promtool(&text);

    let info = r#"portico_venue_info{venue="Bến xe \"Miền Đông\"",province="Hồ Chí Minh",kind="bus"}"#;
    has(&text, info, "1");
    has(&text, &format!("portico_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), "1");
    assert_eq!(text.matches("venue=").count(), 1, "the venue is on its info series only:\n{text}");
    has(&text, r#"portico_requests_total{outcome="splash"}"#, "2");
    has(&text, r#"portico_requests_total{outcome="probe_redirect"}"#, "1");
    has(&text, r#"portico_requests_total{outcome="accept"}"#, "1");
    has(&text, r#"portico_requests_total{outcome="https_redirect"}"#, "0");
    has(&text, r#"portico_splash_views_total{campaign="Bluezone",lang="vi"}"#, "2");
    has(&text, r#"portico_accepts_total{result="ok"}"#, "1");
    has(&text, r#"portico_accepts_total{result="failed"}"#, "0");
    has(&text, r#"portico_accept_duration_seconds_count"#, "1");
    has(&text, "portico_grants_active", "1");
    has(&text, "portico_store_degraded", "0");
    has(&text, "portico_last_reload_success", "1");
    has(&text, "portico_tls_certificate_expiry_seconds", &EXPIRES.to_string());
    let started: u64 = value(&text, "portico_last_reload_timestamp_seconds").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(started <= now && started + 60 > now, "the start-up load is the last one: {started}");
    for name in ["process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
        let v: f64 = value(&text, name).unwrap_or_else(|| panic!("no {name}:\n{text}")).parse().unwrap();
        assert!(v > 0.0, "{name} {v}");
    }
    assert!(value(&text, "process_cpu_seconds_total").is_some(), "{text}");

    // A reload that is refused says so, and the scrape stays clean.
    std::fs::write(&portico.config_file, "[venue]\nname = 1\n").unwrap();
    portico.reload().await;
    let text = wait_for(&portico, r#"portico_reloads_total{result="refused"}"#, "1").await;
    has(&text, "portico_last_reload_success", "0");
    has(&text, r#"portico_reloads_total{result="ok"}"#, "0");
    promtool(&text);
    let health = portico.admin_get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK, "a refused reload keeps the old version serving");
    portico.stop().await;
}

#[tokio::test]
async fn healthz_is_503_while_the_store_refuses_writes_and_200_once_it_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let Some((_fs, portal)) = TestPortal::on_full_disk(&state, "degraded-store").await else { return };
    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER, "the phone still gets online");

    let health = portal.admin_get("/healthz").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE, "{}", health.text());
    assert!(health.text().starts_with("degraded: "), "{}", health.text());
    let text = portal.admin_get("/metrics").await.text();
    has(&text, "portico_store_degraded", "1");
    assert_ne!(value(&text, "portico_store_errors_total"), Some("0"), "the failure is counted:\n{text}");
    promtool(&text);

    std::fs::remove_file(state.join("junk")).unwrap();
    assert_eq!(portal.healthy_within(Duration::from_secs(20)).await.text(), "ok\n");
    has(&portal.admin_get("/metrics").await.text(), "portico_store_degraded", "0");
    portal.stop().await;
}
