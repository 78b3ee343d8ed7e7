//! Trusted devices (issue 10) without root: the portal is given a
//! neighbour table with a signage screen's MAC, and the admin listener's
//! `POST /clients/trust` and `/clients/untrust` (what `portico clients
//! trust|untrust` sends). A trusted screen is online for its probe and the
//! RFC 8908 API with no tap, stays trusted through a restart, and is held
//! again once untrusted; one in the config file is applied on reload and
//! cannot be untrusted at run time; bad requests get a 4xx and change
//! nothing. (The kernel side, on real nftables, is in `tests/venue`.)

mod common;

use std::net::IpAddr;

use bytes::Bytes;
use common::TestPortal;
use hyper::StatusCode;
use portico::grant::MacAddr;
use portico::neighbours::Neighbours;

const PROBE: (&str, &str) = ("connectivitycheck.gstatic.com", "/generate_204");
const SCREEN: &str = "02:00:00:00:5c:01";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The screen at 127.0.0.2; a phone at 127.0.0.3.
fn table() -> Neighbours {
    let screen: MacAddr = SCREEN.parse().unwrap();
    let phone: MacAddr = "02:00:00:00:0b:01".parse().unwrap();
    Neighbours::fixed([(ip("127.0.0.2"), screen), (ip("127.0.0.3"), phone)])
}

async fn admin(portal: &TestPortal, path: &str, body: &str) -> common::Reply {
    let headers = [("content-type", "application/json")];
    common::send(portal.admin, "POST", "127.0.0.1", path, &headers, Bytes::from(body.to_owned())).await
}

async fn trusted(portal: &TestPortal) -> serde_json::Value {
    let reply = common::send(portal.admin, "GET", "127.0.0.1", "/clients/trusted", &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    serde_json::from_slice(&reply.body).unwrap()
}

/// What the RFC 8908 API tells the device at `from`.
async fn captive(portal: &TestPortal, from: &str) -> serde_json::Value {
    let host = format!("127.0.0.1:{}", portal.addr.port());
    serde_json::from_slice(&portal.get_from(ip(from), &host, "/api/captive").await.body).unwrap()
}

/// Polls the API until the device at `from` is (or is not) captive.
async fn until_captive(portal: &TestPortal, from: &str, want: bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while captive(portal, from).await["captive"] != want {
        assert!(std::time::Instant::now() < deadline, "{from} never became captive = {want}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Online for its probe and for the API alike.
async fn online(portal: &TestPortal, from: &str) -> bool {
    let probe = portal.get_from(ip(from), PROBE.0, PROBE.1).await;
    let api = captive(portal, from).await;
    let captive = api["captive"].as_bool().unwrap();
    assert_eq!(probe.status == StatusCode::NO_CONTENT, !captive, "the probe and the API agree: {api}");
    assert!(api.get("seconds-remaining").is_none() || !captive, "{api}");
    !captive
}

#[tokio::test]
async fn a_trusted_screen_is_online_without_a_tap_through_a_restart_until_untrusted() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::builder(dir.path()).neighbours(table()).start().await;
    assert!(!online(&portal, "127.0.0.2").await);

    let body = format!(r#"{{"mac": "{SCREEN}", "name": "màn hình sảnh A"}}"#);
    let reply = admin(&portal, "/clients/trust", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(online(&portal, "127.0.0.2").await, "trusted: online with no tap");
    assert!(!online(&portal, "127.0.0.3").await, "the phone is still held");
    let list = trusted(&portal).await;
    assert_eq!(list, serde_json::json!([{"mac": SCREEN, "name": "màn hình sảnh A", "source": "added"}]));
    // Not a grant: the grant list stays empty.
    assert!(portal.clients().await.as_array().unwrap().is_empty());
    portal.stop().await;

    let portal = TestPortal::builder(dir.path()).neighbours(table()).start().await;
    assert!(online(&portal, "127.0.0.2").await, "still trusted after a restart");
    assert_eq!(trusted(&portal).await[0]["name"], "màn hình sảnh A");
    let reply = admin(&portal, &format!("/clients/untrust?mac={SCREEN}"), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(!online(&portal, "127.0.0.2").await, "untrusted: held again");
    assert_eq!(admin(&portal, &format!("/clients/untrust?mac={SCREEN}"), "").await.status, StatusCode::NOT_FOUND);
    portal.stop().await;

    let portal = TestPortal::builder(dir.path()).neighbours(table()).start().await;
    assert!(!online(&portal, "127.0.0.2").await, "the untrust was kept too");
    portal.stop().await;
}

#[tokio::test]
async fn bad_trust_requests_get_a_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::builder(dir.path()).neighbours(table()).start().await;
    let long_name = "x".repeat(65);
    for (body, want) in [
        (r#"{"mac": "nonsense"}"#.to_owned(), StatusCode::BAD_REQUEST),
        ("not json".to_owned(), StatusCode::BAD_REQUEST),
        (format!(r#"{{"mac": "{SCREEN}", "name": "{long_name}"}}"#), StatusCode::BAD_REQUEST),
        (format!(r#"{{"mac": "{SCREEN}", "name": "{}"}}"#, "y".repeat(5000)), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let reply = admin(&portal, "/clients/trust", &body).await;
        assert_eq!(reply.status, want, "{}: {}", &body[..body.len().min(40)], reply.text());
    }
    assert_eq!(admin(&portal, "/clients/untrust?mac=zz", "").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(admin(&portal, "/clients/elsewhere", "").await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(trusted(&portal).await, serde_json::json!([]));
    assert!(!online(&portal, "127.0.0.2").await);
    portal.stop().await;
}

#[tokio::test]
async fn a_screen_trusted_in_the_config_is_applied_on_reload_and_kept_from_untrust() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::builder(dir.path()).neighbours(table()).start().await;
    let config = std::fs::read_to_string(&portal.config_file).unwrap();
    let with = format!("{config}\n[[trusted]]\nmac = \"{SCREEN}\"\nname = \"hall screen A\"\n");
    std::fs::write(&portal.config_file, &with).unwrap();
    portal.reload().await;
    until_captive(&portal, "127.0.0.2", false).await;
    assert!(online(&portal, "127.0.0.2").await);
    assert_eq!(trusted(&portal).await[0]["source"], "config");
    let refused = admin(&portal, &format!("/clients/untrust?mac={SCREEN}"), "").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.text().contains("config file"), "{}", refused.text());
    assert!(online(&portal, "127.0.0.2").await);

    std::fs::write(&portal.config_file, &config).unwrap();
    portal.reload().await;
    until_captive(&portal, "127.0.0.2", true).await;
    assert!(!online(&portal, "127.0.0.2").await);
    portal.stop().await;
}
