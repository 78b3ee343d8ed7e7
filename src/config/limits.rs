//! `[limits]`: everything a stranger controls is bounded, with defaults that
//! suit a busy station and need no tuning.
//!
//! The per-client request rate must be generous enough for a real join: a
//! phone's OS and its mini-browser fire a few dozen requests in the first
//! seconds (probes from several OS services, the page, its stylesheet, the
//! logo, the captive API). The defaults allow a burst of 60 then 20 per
//! second, far above that and far below what a flood sends.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::check::Checker;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    max_connections: Option<u32>,
    per_client_connections: Option<u32>,
    header_read_timeout: Option<String>,
    tls_handshake_timeout: Option<String>,
    max_header_bytes: Option<u32>,
    max_form_bytes: Option<u32>,
    per_client_rps: Option<u32>,
    per_client_burst: Option<u32>,
    global_rps: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
}

/// The validated limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections per listener; the permit is taken before `accept`.
    pub max_connections: usize,
    /// Open connections per client address.
    pub per_client_connections: usize,
    /// Time to send a request head; also how long an idle keep-alive
    /// connection is kept (hyper starts this timer while waiting for the
    /// next request).
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// Larger request heads get 431.
    pub max_header_bytes: usize,
    /// Larger accept forms get 413.
    pub max_form_bytes: usize,
    /// Requests per second per client; `0` turns rate limiting off.
    pub per_client_rps: u32,
    pub per_client_burst: u32,
    /// Requests per second for everyone together; `0` turns it off.
    pub global_rps: u32,
    /// Peers whose `X-Forwarded-For` is believed; nobody else's is.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            per_client_connections: 32,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_form_bytes: 4 * 1024,
            per_client_rps: 20,
            per_client_burst: 60,
            global_rps: 2000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Validates `[limits]`, noting each bad key in `c`.
pub(super) fn validate(raw: RawLimits, c: &mut Checker) -> Limits {
    let d = Limits::default();
    let max_connections =
        c.count("limits.max_connections", raw.max_connections, d.max_connections as u32, 1..=1_000_000);
    let per_client_connections = c.count(
        "limits.per_client_connections",
        raw.per_client_connections,
        d.per_client_connections as u32,
        1..=100_000,
    );
    // hyper's read buffer cannot be smaller than 8 KiB.
    let max_header_bytes =
        c.count("limits.max_header_bytes", raw.max_header_bytes, d.max_header_bytes as u32, 8192..=1 << 20);
    let max_form_bytes = c.count("limits.max_form_bytes", raw.max_form_bytes, d.max_form_bytes as u32, 64..=1 << 20);
    let per_client_rps = c.count("limits.per_client_rps", raw.per_client_rps, d.per_client_rps, 0..=1_000_000);
    let per_client_burst = c.count("limits.per_client_burst", raw.per_client_burst, d.per_client_burst, 1..=1_000_000);
    let global_rps = c.count("limits.global_rps", raw.global_rps, d.global_rps, 0..=10_000_000);
    let timeouts = Duration::from_millis(100)..=Duration::from_secs(600);
    let header_read_timeout = c.duration(
        "limits.header_read_timeout",
        raw.header_read_timeout.as_deref(),
        d.header_read_timeout,
        timeouts.clone(),
    );
    let tls_handshake_timeout = c.duration(
        "limits.tls_handshake_timeout",
        raw.tls_handshake_timeout.as_deref(),
        d.tls_handshake_timeout,
        timeouts,
    );
    let trusted_proxies = raw
        .trusted_proxies
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p.parse::<IpAddr>() {
            Ok(ip) => Some(ip.to_canonical()),
            Err(_) => {
                c.bad("limits.trusted_proxies", format!("{p:?} is not an IP address"));
                None
            }
        })
        .collect();
    Limits {
        max_connections: max_connections as usize,
        per_client_connections: per_client_connections as usize,
        header_read_timeout,
        tls_handshake_timeout,
        max_header_bytes: max_header_bytes as usize,
        max_form_bytes: max_form_bytes as usize,
        per_client_rps,
        per_client_burst,
        global_rps,
        trusted_proxies,
    }
}
