//! Issue 13: several campaigns on a schedule. Two on the air share the
//! devices by weight, each device sees its one campaign all day on every
//! page, one targeted at airports stays off a station, `check` prints the
//! next 30 days, and the day's counts and report carry the campaign.

mod common;

use std::net::IpAddr;
use std::process::Command;

use common::TestPortal;
use hyper::StatusCode;

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");

/// The campaign whose name a page carries, of the three in the config.
fn campaign_of(page: &str) -> &'static str {
    let shown: Vec<&str> =
        ["Tiêm chủng", "Phòng bão", "Sân bay xanh"].into_iter().filter(|n| page.contains(n)).collect();
    assert_eq!(shown.len(), 1, "one campaign per page: {shown:?}");
    shown[0]
}

fn schedule(dir: &std::path::Path) -> String {
    let folder = |name| common::campaign_folder(dir, name).display().to_string();
    format!(
        "[[campaigns]]\nsource = {:?}\nweight = 1\n\n\
         [[campaigns]]\nsource = {:?}\nfrom = \"2000-01-01\"\nweight = 1\n\n\
         [[campaigns]]\nsource = {:?}\nkinds = [\"airport\"]\nweight = 50\n\n\
         [[campaigns]]\nsource = \"bluezone\"\nuntil = \"2001-01-01\"\n",
        folder("Tiêm chủng"),
        folder("Phòng bão"),
        folder("Sân bay xanh"),
    )
}

#[tokio::test]
async fn each_device_sees_one_campaign_all_day_and_the_counts_carry_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let portal = TestPortal::builder(&state).tables(&schedule(dir.path())).start().await;
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let mut seen = std::collections::BTreeMap::<&str, u32>::new();
    for n in 2..26u8 {
        let device: IpAddr = format!("127.0.0.{n}").parse().unwrap();
        let first = portal.get_from(device, &host, "/").await;
        assert_eq!(first.status, StatusCode::OK);
        let campaign = campaign_of(&first.text());
        // The same device, again and on every surface: the same campaign.
        for path in ["/?lang=en", "/", "/signage", "/poster", "/welcome"] {
            let page = portal.get_from(device, &host, path).await;
            assert_eq!(campaign_of(&page.text()), campaign, "{device} on {path}");
        }
        *seen.entry(campaign).or_default() += 1;
    }
    // The airport campaign, weight 50, is not for a station; the other two
    // share the 24 devices (all 24 on one of two: odds 1 in 8 million).
    assert_eq!(seen.get("Sân bay xanh"), None, "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");

    // The splash views by campaign, in the metrics.
    let metrics = common::send(portal.admin, "GET", "127.0.0.1", "/metrics", &[], bytes::Bytes::new()).await.text();
    let views: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("portico_splash_views_total{campaign=\"Tiêm chủng\""))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(views, 3 * u64::from(seen["Tiêm chủng"]), "three splash loads each:\n{metrics}");

    let config = portal.config_file.clone();
    portal.stop().await;
    let out = Command::new(PORTICO).args(["report", "--format", "json", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let day = &report[0];
    assert_eq!(day["devices_shown"], 24);
    for (campaign, devices) in &seen {
        assert_eq!(day["by_campaign"][campaign]["shown"], *devices, "{day}");
    }
}

#[test]
fn check_prints_what_is_on_the_air_for_the_next_30_days() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico.toml");
    let text = common::config_text(8080, &dir.path().join("state"), "", "")
        + &schedule(dir.path()).replace("from = \"2000-01-01\"", "from = \"2999-01-01\"");
    std::fs::write(&config, &text).unwrap();
    let out = Command::new(PORTICO).args(["check", "--config"]).arg(&config).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("on the air")).collect();
    assert!(lines[0].contains("station") && lines[0].contains("Asia/Ho_Chi_Minh"), "{stdout}");
    // One run of 30 days: only the first campaign (the second starts in
    // 2999, the third is for airports, the fourth ended in 2001).
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[1].contains(" to ") && lines[1].ends_with(": Tiêm chủng"), "{stdout}");

    // At an airport the airport campaign takes 50 of 51 shares.
    std::fs::write(&config, text.replacen("kind = \"station\"", "kind = \"airport\"", 1)).unwrap();
    let out = Command::new(PORTICO).args(["check", "--config"]).arg(&config).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Tiêm chủng (1/51 of devices), Sân bay xanh (50/51 of devices)"), "{stdout}");

    // A broken scheduled campaign is named by its entry.
    let broken =
        text.replacen("weight = 1\n", "weight = 0\n", 1).replacen("kinds = [\"airport\"]", "kinds = [\"harbour\"]", 1);
    std::fs::write(&config, broken).unwrap();
    let out = Command::new(PORTICO).args(["check", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("campaigns[1].weight") && stderr.contains("campaigns[3].kinds"), "{stderr}");
}
