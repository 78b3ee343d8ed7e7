//! What the gateway's supervisor and Prometheus read from the admin
//! listener: `/healthz` and `/metrics`.
//!
//! `/healthz` answers 200 `ok` while Portico does its job, and 503 with
//! one line per reason when it does not: the grant store refuses writes
//! (phones still get online, but a restart would forget them), or the
//! firewall refused its rules (the kernel may not gate as Portico
//! believes). Either clears by itself once the disk or the firewall takes
//! the retry. A freshly started Portico is healthy: the listeners are
//! served only once the store is open and the rules have been validated.

use std::time::SystemTime;

use bytes::Bytes;
use hyper::{Response, StatusCode};

use super::Portal;
use super::body::{self, Body};
use crate::metrics::{self, Scrape};

/// `GET /healthz`.
pub fn health(portal: &Portal) -> Response<Body> {
    let problems = problems(portal);
    if problems.is_empty() {
        body::text(StatusCode::OK, "ok\n")
    } else {
        body::text(StatusCode::SERVICE_UNAVAILABLE, problems.concat())
    }
}

/// Each line starts with the word a script may look for.
fn problems(portal: &Portal) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if portal.sessions.degraded() {
        problems.push("degraded: grants are not being written to disk\n");
    }
    if portal.counts.degraded() {
        problems.push("degraded: the daily counts are not being written to disk\n");
    }
    if portal.gate.refused() {
        problems.push("firewall: the rules could not be installed; retrying (see the log)\n");
    }
    problems
}

/// `GET /metrics`.
pub fn metrics(portal: &Portal, now: SystemTime) -> Response<Body> {
    let live = portal.live.load();
    let (day, tally) = portal.counts.today(now);
    let on_air = live.on_air(day);
    let scrape = Scrape {
        venue: &live.config.venue,
        grants_active: portal.sessions.active(now),
        store_degraded: portal.sessions.degraded(),
        counts_degraded: portal.counts.degraded(),
        firewall_refused: portal.gate.refused(),
        tls_expiry: live.tls_expiry,
        today: (day, &tally),
        on_air: &on_air,
        alert: live.alert.as_ref().map(|a| (a.open_gate, a.since)),
    };
    body::response(StatusCode::OK, metrics::CONTENT_TYPE, Bytes::from(portal.metrics.render(&scrape)))
}
