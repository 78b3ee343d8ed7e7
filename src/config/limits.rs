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

use super::raw::parse_duration;

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

/// Validates `[limits]`, reporting each bad key through `bad`.
pub(super) fn validate(raw: RawLimits, bad: &mut dyn FnMut(&str, String)) -> Limits {
    let d = Limits::default();
    let mut count = |key: &str, value: Option<u32>, default: usize, min: u32, max: u32| match value {
        None => default,
        Some(v) if (min..=max).contains(&v) => v as usize,
        Some(v) => {
            bad(key, format!("{v} is out of range ({min} to {max})"));
            default
        }
    };
    let max_connections = count("limits.max_connections", raw.max_connections, d.max_connections, 1, 1_000_000);
    let per_client_connections =
        count("limits.per_client_connections", raw.per_client_connections, d.per_client_connections, 1, 100_000);
    // hyper's read buffer cannot be smaller than 8 KiB.
    let max_header_bytes = count("limits.max_header_bytes", raw.max_header_bytes, d.max_header_bytes, 8192, 1 << 20);
    let max_form_bytes = count("limits.max_form_bytes", raw.max_form_bytes, d.max_form_bytes, 64, 1 << 20);
    let per_client_rps = count("limits.per_client_rps", raw.per_client_rps, d.per_client_rps as usize, 0, 1_000_000);
    let per_client_burst =
        count("limits.per_client_burst", raw.per_client_burst, d.per_client_burst as usize, 1, 1_000_000);
    let global_rps = count("limits.global_rps", raw.global_rps, d.global_rps as usize, 0, 10_000_000);
    let mut duration = |key: &str, value: Option<String>, default: Duration| match value.as_deref().map(parse_duration)
    {
        None => default,
        Some(Ok(v)) if v >= Duration::from_millis(100) && v <= Duration::from_secs(600) => v,
        Some(Ok(_)) => {
            bad(key, "must be between 100ms and 10m".into());
            default
        }
        Some(Err(e)) => {
            bad(key, e);
            default
        }
    };
    let header_read_timeout = duration("limits.header_read_timeout", raw.header_read_timeout, d.header_read_timeout);
    let tls_handshake_timeout =
        duration("limits.tls_handshake_timeout", raw.tls_handshake_timeout, d.tls_handshake_timeout);
    let trusted_proxies = raw
        .trusted_proxies
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p.parse::<IpAddr>() {
            Ok(ip) => Some(ip.to_canonical()),
            Err(_) => {
                bad("limits.trusted_proxies", format!("{p:?} is not an IP address"));
                None
            }
        })
        .collect();
    Limits {
        max_connections,
        per_client_connections,
        header_read_timeout,
        tls_handshake_timeout,
        max_header_bytes,
        max_form_bytes,
        per_client_rps: per_client_rps as u32,
        per_client_burst: per_client_burst as u32,
        global_rps: global_rps as u32,
        trusted_proxies,
    }
}
