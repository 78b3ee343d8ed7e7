//! One device, all its addresses (issue 8), without root: the portal is
//! given a neighbour table in which two loopback addresses belong to one
//! phone's MAC, as a phone's IPv4 and IPv6 addresses do on a venue's LAN.
//! A grant made from one address holds on the other for probes, the RFC
//! 8908 API, the welcome redirect, `clients list`, a restart and a revoke;
//! a second phone stays captive throughout.

mod common;

use std::net::IpAddr;

use common::TestPortal;
use hyper::StatusCode;
use portico::grant::MacAddr;
use portico::neighbours::Neighbours;

const PROBE: (&str, &str) = ("connectivitycheck.gstatic.com", "/generate_204");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Phone A at 127.0.0.1 and 127.0.0.2; phone B at 127.0.0.3.
fn venue_table() -> (Neighbours, MacAddr) {
    let a: MacAddr = "02:00:00:00:0a:01".parse().unwrap();
    let b: MacAddr = "02:00:00:00:0b:01".parse().unwrap();
    (Neighbours::fixed([(ip("127.0.0.1"), a), (ip("127.0.0.2"), a), (ip("127.0.0.3"), b)]), a)
}

async fn captive(portal: &TestPortal, from: &str) -> serde_json::Value {
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let reply = portal.get_from(ip(from), &host, "/api/captive").await;
    assert_eq!(reply.status, StatusCode::OK);
    serde_json::from_slice(&reply.body).unwrap()
}

#[tokio::test]
async fn a_phone_granted_on_one_address_is_online_on_all_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let (table, mac_a) = venue_table();
    let portal = TestPortal::builder(dir.path()).neighbours(table).start().await;

    assert_eq!(portal.accept_from(ip("127.0.0.1")).await.status, StatusCode::SEE_OTHER);

    // The other address of A: online for its probe, its API and its pages.
    assert_eq!(portal.get_from(ip("127.0.0.2"), PROBE.0, PROBE.1).await.status, StatusCode::NO_CONTENT);
    let api = captive(&portal, "127.0.0.2").await;
    assert_eq!(api["captive"], false, "{api}");
    assert!(api["seconds-remaining"].as_u64().unwrap() > 12 * 3600 - 60, "{api}");
    let page = portal.get_from(ip("127.0.0.2"), "example.com", "/news").await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.header("location"), format!("{}welcome", portal.url()));

    // B, who never tapped, is still held.
    let held = portal.get_from(ip("127.0.0.3"), PROBE.0, PROBE.1).await;
    assert_eq!((held.status, held.header("location")), (StatusCode::FOUND, portal.url().as_str()));
    assert_eq!(captive(&portal, "127.0.0.3").await["captive"], true);

    // The operator sees one device with both its addresses.
    let clients = portal.clients().await;
    let list = clients.as_array().unwrap();
    assert_eq!(list.len(), 1, "{clients}");
    assert_eq!(list[0]["mac"], mac_a.to_string());
    assert_eq!(list[0]["ip"], "127.0.0.1");
    assert_eq!(list[0]["addresses"], serde_json::json!(["127.0.0.1", "127.0.0.2"]), "{clients}");
    portal.stop().await;
}

#[tokio::test]
async fn the_journal_keeps_every_address_across_a_restart_and_a_revoke_ends_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let (table, mac_a) = venue_table();
    let portal = TestPortal::builder(dir.path()).neighbours(table.clone()).start().await;
    assert_eq!(portal.accept_from(ip("127.0.0.1")).await.status, StatusCode::SEE_OTHER);
    // Seen on its second address after the grant.
    assert_eq!(captive(&portal, "127.0.0.2").await["captive"], false);
    portal.stop().await;

    // Restarted with a neighbour table that has forgotten the second
    // address: the grant still lists it, from the journal.
    let a_only = Neighbours::fixed([(ip("127.0.0.1"), mac_a)]);
    let portal = TestPortal::builder(dir.path()).neighbours(a_only).start().await;
    let clients = portal.clients().await;
    assert_eq!(clients[0]["addresses"], serde_json::json!(["127.0.0.1", "127.0.0.2"]), "{clients}");
    portal.stop().await;

    // A revoke that names the second address ends the device's grant on
    // every address.
    let portal = TestPortal::builder(dir.path()).neighbours(table).start().await;
    let revoked =
        common::send(portal.admin, "POST", "127.0.0.1", "/clients/revoke?target=127.0.0.2", &[], bytes::Bytes::new())
            .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    for from in ["127.0.0.1", "127.0.0.2"] {
        let held = portal.get_from(ip(from), PROBE.0, PROBE.1).await;
        assert_eq!(held.status, StatusCode::FOUND, "{from} after the revoke");
        assert_eq!(captive(&portal, from).await["captive"], true, "{from}");
    }
    assert!(portal.clients().await.as_array().unwrap().is_empty());
    portal.stop().await;
}

#[tokio::test]
async fn a_client_the_gateway_cannot_see_is_its_address_alone() {
    let dir = tempfile::tempdir().unwrap();
    // No neighbour table: like clients behind a router.
    let portal = TestPortal::start(dir.path()).await;
    assert_eq!(portal.accept_from(ip("127.0.0.1")).await.status, StatusCode::SEE_OTHER);
    assert_eq!(portal.get_from(ip("127.0.0.1"), PROBE.0, PROBE.1).await.status, StatusCode::NO_CONTENT);
    assert_eq!(portal.get_from(ip("127.0.0.2"), PROBE.0, PROBE.1).await.status, StatusCode::FOUND);
    let clients = portal.clients().await;
    assert_eq!(clients[0]["mac"], serde_json::Value::Null, "{clients}");
    assert_eq!(clients[0]["addresses"], serde_json::json!(["127.0.0.1"]));
    portal.stop().await;
}
