//! The RFC 8908 Captive Portal API at `/api/captive`.
//!
//! Phones that got the API URL from DHCP option 114 (RFC 8910) ask it
//! whether they are held, instead of guessing from a probe. The answer is
//! small JSON (RFC 8908 caps it at 4 KiB; ours is a few hundred bytes),
//! `application/captive+json`, `Cache-Control: private`, and carries
//! `seconds-remaining` only once the client has a grant. The client is its
//! device: a phone granted over IPv4 asking over IPv6 is not captive.

use std::time::SystemTime;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::{self, Body};
use super::{Live, Portal};
use crate::client::Client;

#[derive(Serialize)]
struct CaptiveState<'a> {
    captive: bool,
    #[serde(rename = "user-portal-url")]
    user_portal_url: &'a str,
    #[serde(rename = "venue-info-url")]
    venue_info_url: &'a str,
    #[serde(rename = "seconds-remaining", skip_serializing_if = "Option::is_none")]
    seconds_remaining: Option<u64>,
    /// A repeat tap on *Connect* extends the session.
    #[serde(rename = "can-extend-session")]
    can_extend_session: bool,
}

pub fn api(portal: &Portal, live: &Live, client: Client, now: SystemTime) -> Response<Body> {
    let grant = portal.sessions.lookup(&client, now);
    // A trusted device (or any, with the gate open) is online with no
    // session to count down.
    let trusted = grant.is_none() && (live.gate_open() || portal.sessions.is_trusted(&client));
    let pages = &live.pages;
    let state = CaptiveState {
        captive: grant.is_none() && !trusted,
        user_portal_url: &pages.portal_url,
        venue_info_url: &pages.welcome_url,
        seconds_remaining: grant.map(|g| g.remaining(now).as_secs()),
        can_extend_session: true,
    };
    let json = serde_json::to_vec(&state).unwrap_or_default();
    let mut res = body::response(StatusCode::OK, "application/captive+json", Bytes::from(json));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    res
}
