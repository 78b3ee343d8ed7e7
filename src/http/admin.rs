//! The operator's listener (loopback by default): `/healthz` for the
//! supervisor, `/metrics` for Prometheus, `/` a status page that reads the
//! same numbers, and `/clients` for `portico clients list|revoke`. Nothing
//! here is reachable from the clients' side unless the operator binds it
//! there, and even then a revoke is only taken from loopback.

use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use maud::{DOCTYPE, html};

use serde::Serialize;

use super::body::{self, Body};
use super::{Conn, Portal};
use crate::client;
use crate::grant::{Grant, to_unix_ms};
use crate::metrics::Outcome;

pub async fn handle(portal: &Portal, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::POST && req.uri().path() == "/clients/revoke" {
        if !conn.peer.ip().to_canonical().is_loopback() {
            return body::text(StatusCode::FORBIDDEN, "revoke is only accepted from the gateway itself\n");
        }
        return revoke(portal, req.uri().query()).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return body::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let now = SystemTime::now();
    match req.uri().path() {
        "/clients" => {
            let list: Vec<ClientJson> = portal.sessions.list(now).iter().map(|g| ClientJson::new(g, now)).collect();
            json(StatusCode::OK, &list)
        }
        "/healthz" => {
            if portal.sessions.degraded() {
                body::text(StatusCode::OK, "degraded: grants are not being written to disk\n")
            } else {
                body::text(StatusCode::OK, "ok\n")
            }
        }
        "/metrics" => {
            let text = portal.metrics.render(&portal.live.load().config.venue.name, portal.sessions.active(now));
            body::response(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", Bytes::from(text))
        }
        "/" => body::response(StatusCode::OK, body::HTML, Bytes::from(status_page(portal, now))),
        _ => body::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// One client as `portico clients list --json` prints it.
#[derive(Serialize)]
struct ClientJson {
    /// Where it tapped *Connect*.
    ip: String,
    mac: Option<String>,
    /// Every address it has been seen on, `ip` first.
    addresses: Vec<String>,
    /// Unix seconds.
    expires: u64,
    seconds_remaining: u64,
}

impl ClientJson {
    fn new(g: &Grant, now: SystemTime) -> ClientJson {
        ClientJson {
            ip: g.ip().to_string(),
            mac: g.mac().map(|m| m.to_string()),
            addresses: g.addresses().iter().map(ToString::to_string).collect(),
            expires: to_unix_ms(g.expires) / 1000,
            seconds_remaining: g.remaining(now).as_secs(),
        }
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    body::response(status, "application/json", Bytes::from(bytes))
}

/// `POST /clients/revoke?target=<ip|mac>`.
async fn revoke(portal: &Portal, query: Option<&str>) -> Response<Body> {
    let Some(target) = query.and_then(|q| q.strip_prefix("target=")) else {
        return body::text(StatusCode::BAD_REQUEST, "give ?target=<ip or mac>\n");
    };
    let Some(device) = client::device_named(target, &portal.neighbours) else {
        return body::text(StatusCode::BAD_REQUEST, format!("{target:?} is neither an IP address nor a MAC address\n"));
    };
    let now = SystemTime::now();
    // An address the neighbour table no longer knows may still be listed
    // in the grant of the device that used it.
    let device = match target.parse::<std::net::IpAddr>() {
        Ok(ip) if portal.sessions.get(device, now).is_none() => {
            portal.sessions.find_by_address(ip.to_canonical(), now).map_or(device, |g| g.device)
        }
        _ => device,
    };
    match portal.sessions.revoke(device).await {
        Ok(None) => body::text(StatusCode::NOT_FOUND, format!("no live grant for {target}\n")),
        Ok(Some(revoked)) => json(StatusCode::OK, &[ClientJson::new(&revoked, now)]),
        Err(e) => body::text(StatusCode::SERVICE_UNAVAILABLE, format!("could not revoke {target}: {e}\n")),
    }
}

fn status_page(portal: &Portal, now: SystemTime) -> String {
    let m = &portal.metrics;
    let live = portal.live.load();
    let venue = &live.config.venue;
    let rows = [
        ("Devices online now", portal.sessions.active(now) as u64),
        ("Splash pages shown", m.requests(Outcome::Splash)),
        ("Connect taps answered", m.accepts_ok.load(std::sync::atomic::Ordering::Relaxed)),
        ("Connect taps failed", m.accepts_failed.load(std::sync::atomic::Ordering::Relaxed)),
        ("Probes sent to the portal", m.requests(Outcome::ProbeRedirect)),
        ("Probes answered online", m.requests(Outcome::ProbeSuccess)),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Portico – " (venue.name) } }
            body {
                h1 { "Portico – " (venue.name) }
                p {
                    "Campaign " strong { (live.campaign.name) }
                    ", firewall " strong { (live.config.firewall.backend_name()) }
                    ", up " (m.uptime().as_secs()) " s"
                    @if portal.sessions.degraded() { ", " strong { "grant store degraded (see the log)" } }
                }
                table {
                    @for (label, value) in rows { tr { th scope="row" { (label) } td { (value) } } }
                }
                p { a href="/metrics" { "Prometheus metrics" } }
            }
        }
    }
    .into_string()
}
