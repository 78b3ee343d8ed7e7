//! The grant path end to end without root: a whole Portico in-process on
//! the recording firewall backend, which a test tells to refuse as a
//! kernel would. What a visitor sees when the firewall cannot let them
//! through, and that nothing is lost: the try-again page, in the visitor's
//! language, whose button grants once the firewall takes changes again.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Form, TestPortal, send};
use hyper::StatusCode;
use portico::firewall::Recording;

#[tokio::test]
async fn a_refused_grant_shows_the_try_again_page_and_its_button_grants_once_the_firewall_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let firewall = Arc::new(Recording::default());
    let portal = TestPortal::builder(dir.path()).firewall(firewall.clone()).start().await;
    firewall.refuse(true);

    let refused = portal.accept().await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), "5", "the phone is told when to try again");
    let page = refused.text();
    let lang = refused.header("content-language").to_owned();
    assert!(!lang.is_empty() && page.contains(&format!("<html lang=\"{lang}\"")), "{page}");
    let again = Form::parse(&page).expect("the try-again page has a button that posts");
    assert_eq!(again.action, "/");
    assert!(again.fields.contains(&("lang".to_owned(), lang.clone())), "the next page stays in {lang}");
    assert_eq!(portal.clients().await.as_array().map(Vec::len), Some(0), "no grant was made");
    assert!(firewall.allowed_devices().is_empty());

    // Everyone else is still served meanwhile.
    let other = portal.get_from("127.0.0.2".parse().unwrap(), "connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(other.status, StatusCode::FOUND, "a held phone's probe is still sent to the portal");
    let metrics = portal.admin_get("/metrics").await.text();
    assert!(metrics.contains("portico_requests_total{outcome=\"unavailable\"} 1"), "{metrics}");

    // The firewall takes changes again: the same button lets the phone through.
    firewall.refuse(false);
    let granted = portal.submit(&again).await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.text());
    assert_eq!(granted.header("location"), format!("/welcome?lang={lang}"));
    let clients = portal.clients().await;
    assert_eq!(clients.as_array().map(Vec::len), Some(1), "{clients}");
    assert_eq!(firewall.allowed_devices().len(), 1, "the kernel was asked once for the grant");
    let probe = portal.get("connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(probe.status, StatusCode::NO_CONTENT, "online now");
    portal.stop().await;
}

#[tokio::test]
async fn a_refused_revoke_is_reported_and_the_device_stays_online() {
    let dir = tempfile::tempdir().unwrap();
    let firewall = Arc::new(Recording::default());
    let portal = TestPortal::builder(dir.path()).firewall(firewall.clone()).start().await;
    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER);

    firewall.refuse(true);
    let revoke = send(portal.admin, "POST", "127.0.0.1", "/clients/revoke?target=127.0.0.1", &[], Bytes::new()).await;
    assert_eq!(revoke.status, StatusCode::SERVICE_UNAVAILABLE, "{}", revoke.text());
    assert!(revoke.text().contains("could not revoke"), "{}", revoke.text());
    assert_eq!(portal.clients().await.as_array().map(Vec::len), Some(1), "the grant is kept, as the kernel keeps it");
    let probe = portal.get("connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(probe.status, StatusCode::NO_CONTENT);

    firewall.refuse(false);
    let revoke = send(portal.admin, "POST", "127.0.0.1", "/clients/revoke?target=127.0.0.1", &[], Bytes::new()).await;
    assert_eq!(revoke.status, StatusCode::OK, "{}", revoke.text());
    assert_eq!(firewall.revoked.lock().unwrap().len(), 1);
    assert_eq!(portal.clients().await.as_array().map(Vec::len), Some(0));
    let probe = portal.get("connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(probe.status, StatusCode::FOUND, "held at the gate again");
    portal.stop().await;
}
