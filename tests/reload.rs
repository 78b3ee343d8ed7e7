//! Reloading (what SIGHUP does): a province's edited campaign is served
//! without a restart, a broken one is refused while the old keeps serving,
//! grants survive, and no request fails while pages are swapped under load.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestPortal;
use hyper::StatusCode;

/// A copy of the built-in campaign folder, to edit.
fn campaign_copy(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/campaigns/bluezone");
    let target = dir.join("campaign");
    copy_dir(&source, &target);
    target
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// Polls the admin metrics until `line` appears (a reload is asynchronous).
async fn wait_for_metric(portal: &TestPortal, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = common::send(portal.admin, "GET", "127.0.0.1", "/metrics", &[], Default::default()).await;
        if metrics.text().contains(line) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {line:?} in:\n{}", metrics.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_edited_campaign_is_served_after_reload_and_grants_survive() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = campaign_copy(dir.path());
    let extra = format!("campaign = \"{}\"", campaign.display());
    let portal = TestPortal::start_with(&dir.path().join("state"), &extra).await;
    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER);

    edit(&campaign.join("locales/vi.toml"), "Cài Bluezone – khẩu trang điện tử", "Cài Bluezone ngay hôm nay");
    portal.reload().await;
    wait_for_metric(&portal, "portico_reloads_total{result=\"ok\"} 1").await;

    let splash = portal.page("/", &[]).await.text();
    assert!(splash.contains("Cài Bluezone ngay hôm nay"), "the new title is served");
    let api = portal.page("/api/captive", &[]).await.text();
    assert!(api.contains("\"captive\":false"), "the grant survived the reload: {api}");
    portal.stop().await;
}

#[tokio::test]
async fn a_broken_campaign_is_refused_and_the_old_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = campaign_copy(dir.path());
    let extra = format!("campaign = \"{}\"", campaign.display());
    let portal = TestPortal::start_with(&dir.path().join("state"), &extra).await;

    edit(&campaign.join("locales/en.toml"), "slogan = ", "slogun = ");
    portal.reload().await;
    wait_for_metric(&portal, "result=\"refused\"} 1").await;
    let en = portal.page("/?lang=en", &[]).await;
    assert_eq!(en.status, StatusCode::OK);
    assert!(en.text().contains("Protect yourself, protect the community"), "the old campaign still serves");

    // A broken config file is refused the same way.
    edit(&portal.config_file, "kind = \"station\"", "kind = \"spaceport\"");
    portal.reload().await;
    wait_for_metric(&portal, "result=\"refused\"} 2").await;
    assert_eq!(portal.page("/", &[]).await.status, StatusCode::OK);
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = campaign_copy(dir.path());
    let extra = format!("campaign = \"{}\"", campaign.display());
    let portal = TestPortal::start_with(&dir.path().join("state"), &extra).await;
    let addr = portal.addr;
    let host = format!("127.0.0.1:{}", addr.port());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..8 {
        let (stop, host) = (stop.clone(), host.clone());
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let path = if i % 2 == 0 { "/" } else { "/?lang=en" };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = common::send(addr, "GET", &host, path, &[], Default::default()).await;
                if r.status == StatusCode::OK && r.text().contains("</html>") {
                    ok += 1;
                } else {
                    failed.push(r.status);
                }
            }
            (ok, failed)
        }));
    }
    for n in 1..=10 {
        edit(&campaign.join("locales/vi.toml"), "Bluezone –", "Bluezone –");
        portal.reload().await;
        wait_for_metric(&portal, &format!("portico_reloads_total{{result=\"ok\"}} {n}\n")).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (ok, failed) = c.await.unwrap();
        assert!(failed.is_empty(), "failed requests during reloads: {failed:?}");
        total += ok;
    }
    assert!(total > 0);
    portal.stop().await;
}
