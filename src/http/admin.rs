//! The operator's listener (loopback by default): `/healthz` for the
//! supervisor, `/metrics` for Prometheus, `/` a status page that reads the
//! same numbers. Nothing here is reachable from the clients' side unless the
//! operator binds it there.

use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use maud::{DOCTYPE, html};

use super::Portal;
use super::body::{self, Body};
use crate::metrics::Outcome;

pub async fn handle(portal: &Portal, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return body::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let now = SystemTime::now();
    match req.uri().path() {
        "/healthz" => {
            if portal.sessions.degraded() {
                body::text(
                    StatusCode::OK,
                    "degraded: grants are not being written to disk\n",
                )
            } else {
                body::text(StatusCode::OK, "ok\n")
            }
        }
        "/metrics" => {
            let text = portal
                .metrics
                .render(&portal.config.venue.name, portal.sessions.active(now));
            body::response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(text),
            )
        }
        "/" => body::response(
            StatusCode::OK,
            body::HTML,
            Bytes::from(status_page(portal, now)),
        ),
        _ => body::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn status_page(portal: &Portal, now: SystemTime) -> String {
    let m = &portal.metrics;
    let venue = &portal.config.venue;
    let rows = [
        ("Devices online now", portal.sessions.active(now) as u64),
        ("Splash pages shown", m.requests(Outcome::Splash)),
        (
            "Connect taps answered",
            m.accepts_ok.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "Connect taps failed",
            m.accepts_failed.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "Probes sent to the portal",
            m.requests(Outcome::ProbeRedirect),
        ),
        ("Probes answered online", m.requests(Outcome::ProbeSuccess)),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Portico – " (venue.name) } }
            body {
                h1 { "Portico – " (venue.name) }
                p {
                    "Campaign " strong { (portal.content.campaign.name) }
                    ", firewall " strong { (portal.config.firewall.backend_name()) }
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
