//! Issue 12: the daily counts survive a clean stop, a restart and a
//! `kill -9`, and `portico report` prints them as CSV a spreadsheet reads
//! back, diacritics and all.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::TestPortal;
use hyper::StatusCode;

const PORTICO: &str = env!("CARGO_BIN_EXE_portico");
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36";

/// A small RFC 4180 reader, written apart from the one in `src/report.rs`
/// so that the test does not trust the code it checks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => record.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                c => field.push(c),
            }
        }
    }
    records
}

/// `portico report --config FILE --format csv`, checked and parsed: the
/// header, and one map of column → value per row.
fn report(config: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let out = Command::new(PORTICO).args(["report", "--format", "csv", "--config"]).arg(config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("the report is UTF-8");
    let text = text.strip_prefix('\u{feff}').expect("the report starts with a BOM, for Excel");
    let records = parse_csv(text);
    let header = &records[0];
    assert_eq!(
        header[..8].join(","),
        "venue,province,kind,date,devices_shown,devices_connected,devices_returning,splash_views"
    );
    records[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len());
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn a_clean_stop_keeps_the_days_counts_and_the_report_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    for _ in 0..3 {
        assert_eq!(
            portal.page("/", &[("user-agent", ANDROID), ("accept-language", "vi")]).await.status,
            StatusCode::OK
        );
    }
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let host = format!("127.0.0.1:{}", portal.addr.port());
    assert_eq!(portal.get_from(other, &host, "/?lang=en").await.status, StatusCode::OK);
    // Loads the splash once more, then taps Connect.
    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER);
    let config = portal.config_file.clone();
    portal.stop().await;

    let rows = report(&config);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((row["venue"].as_str(), row["kind"].as_str()), ("Ga Thử Nghiệm", "station"));
    let n = |c: &str| row[c].parse::<u64>().unwrap_or_else(|_| panic!("{c}: {:?}", row.get(c)));
    assert_eq!((n("devices_shown"), n("devices_connected"), n("devices_returning"), n("splash_views")), (2, 1, 0, 5));
    assert_eq!((n("shown_android"), n("views_android"), n("shown_other")), (1, 3, 1));
    assert_eq!((n("shown_lang_en"), n("views_lang_vi")), (1, 4));
    let hours: u64 = (0..24).map(|h| n(&format!("views_h{h:02}"))).sum();
    assert_eq!(hours, 5);
    // The counts hold no address, even on the day itself.
    let counts = dir.path().join("counts");
    for needle in ["127.0.0.1", "127.0.0.2"] {
        assert_eq!(files_containing(&counts, needle), Vec::<String>::new(), "{needle}");
    }

    let json = Command::new(PORTICO).args(["report", "--format", "json", "--config"]).arg(&config).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json[0]["devices_shown"], 2);
    assert_eq!(json[0]["by_platform"]["android"]["shown"], 1);
}

fn config(state: &Path) -> String {
    format!(
        "[venue]\nname = \"Bến xe Đà Lạt\"\nkind = \"bus\"\nprovince = \"Lâm Đồng\"\n\
         [portal]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1/\"\n\
         [firewall]\nbackend = \"none\"\n[state]\ndir = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [limits]\nper_client_rps = 0\nglobal_rps = 0\n",
        state.display()
    )
}

fn splash_from(from: &str, portal: SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(from.parse().unwrap(), 0).into()).unwrap();
    socket.connect(&portal.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn kill_9_after_a_second_keeps_the_days_numbers_and_a_restart_its_devices() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("portico.toml");
    std::fs::write(&config_file, config(dir.path())).unwrap();

    let (mut child, portal, _) = common::start_binary(&config_file);
    splash_from("127.0.0.1", portal);
    splash_from("127.0.0.1", portal);
    splash_from("127.0.0.3", portal);
    // The writer looks every second: 1.5 s is past its next write.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL: no flush
    child.wait().unwrap();
    let rows = report(&config_file);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row["venue"].as_str(), row["province"].as_str()), ("Bến xe Đà Lạt", "Lâm Đồng"));
    assert_eq!((row["devices_shown"].as_str(), row["splash_views"].as_str()), ("2", "3"));

    // The same day after a restart: the same device is not shown anew.
    let (mut child, portal, _) = common::start_binary(&config_file);
    splash_from("127.0.0.3", portal);
    splash_from("127.0.0.4", portal);
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let row = &report(&config_file)[0];
    assert_eq!((row["devices_shown"].as_str(), row["splash_views"].as_str()), ("3", "5"));
}

/// A province's one command: two venues' reports, one sent as JSON and
/// one as CSV, merged into one CSV that holds both venues' rows.
#[test]
fn a_province_merges_its_venues_reports_with_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for (venue, format, devices) in [("Ga Huế", "json", 2), ("Cảng Chân Mây", "csv", 1)] {
        let state = dir.path().join(venue);
        std::fs::create_dir(&state).unwrap();
        let config_file = state.join("portico.toml");
        std::fs::write(&config_file, config(&state).replace("Bến xe Đà Lạt", venue)).unwrap();
        let (mut child, portal, _) = common::start_binary(&config_file);
        for i in 0..devices {
            splash_from(&format!("127.0.0.{}", 10 + i), portal);
        }
        // SIGTERM: a clean stop writes the day.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM).unwrap();
        assert!(child.wait().unwrap().success());
        let out = Command::new(PORTICO).args(["report", "--format", format, "--config"]).arg(&config_file).output();
        let out = out.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let file = dir.path().join(format!("{venue}.{format}"));
        std::fs::write(&file, out.stdout).unwrap();
        reports.push(file);
    }
    let out = Command::new(PORTICO).args(["report", "--merge"]).args(&reports).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let records = parse_csv(text.strip_prefix('\u{feff}').expect("a BOM"));
    let shown: Vec<(&str, &str)> = records[1..].iter().map(|r| (r[0].as_str(), r[4].as_str())).collect();
    assert_eq!(shown, [("Ga Huế", "2"), ("Cảng Chân Mây", "1")]);

    // Something that is not a report is named, and nothing is printed.
    let bad = dir.path().join("notes.csv");
    std::fs::write(&bad, "date,visitors\r\n2026-03-01,4\r\n").unwrap();
    let out = Command::new(PORTICO).args(["report", "--merge"]).arg(&reports[0]).arg(&bad).output().unwrap();
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.csv"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Issue 13's outcome: on `/welcome` the store buttons go through counted
/// redirects and "already installed?" is one tap; each device counts once
/// a day, under the campaign it was shown, in the report.
#[tokio::test]
async fn store_buttons_and_already_installed_are_counted_per_device_and_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let phone: IpAddr = "127.0.0.5".parse().unwrap();
    let welcome = portal.get_from(phone, &host, "/welcome?lang=en").await.text();
    assert!(welcome.contains("href=\"/go/google-play?lang=en\"") && welcome.contains("href=\"/go/app-store?lang=en\""));
    assert!(welcome.contains("action=\"/installed?lang=en\"") && welcome.contains("Already have Bluezone?"));
    for _ in 0..2 {
        let store = portal.get_from(phone, &host, "/go/google-play?lang=en").await;
        assert_eq!(store.status, StatusCode::FOUND);
        assert_eq!(store.header("location"), "https://play.google.com/store/apps/details?id=com.mic.bluezone");
    }
    let other: IpAddr = "127.0.0.6".parse().unwrap();
    assert_eq!(
        portal.get_from(other, &host, "/go/app-store").await.header("location"),
        "https://apps.apple.com/app/id1508062685"
    );
    let tapped =
        common::send_from(phone, portal.addr, "POST", &host, "/installed?lang=en", &[], bytes::Bytes::new()).await;
    assert_eq!((tapped.status, tapped.header("location")), (StatusCode::SEE_OTHER, "/installed?lang=en"));
    let thanks = portal.get_from(phone, &host, "/installed?lang=en").await;
    assert!(thanks.text().contains("Thank you! Keep Bluetooth on."), "{}", thanks.text());
    let config = portal.config_file.clone();
    portal.stop().await;

    let row = &report(&config)[0];
    let n = |c: &str| row[c].parse::<u64>().unwrap_or_else(|_| panic!("{c}: {:?}", row.get(c)));
    assert_eq!((n("google_play"), n("app_store"), n("installed")), (1, 1, 1));
    assert_eq!((n("google_play_campaign_Bluezone"), n("installed_campaign_Bluezone")), (1, 1));
}
