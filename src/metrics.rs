//! Counters the operator and the province read: Prometheus text on the admin
//! listener's `/metrics`, and the same numbers on its status page.
//!
//! Plain atomics with relaxed ordering: each number is independent, a scrape
//! may see one a moment older than another, and the hot path pays one
//! uncontended increment. No registry crate: the text format is a few lines.

use std::fmt::Write as _;
use std::sync::RwLock;

use crate::http::Rejection;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What a request to the portal turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Splash,
    Welcome,
    Signage,
    Poster,
    Api,
    Asset,
    Accept,
    /// A client without a grant, sent to the portal.
    ProbeRedirect,
    /// A known probe from a granted client, answered "online".
    ProbeSuccess,
    /// Any other foreign request from a granted client, sent to `/welcome`.
    WelcomeRedirect,
    NotFound,
    /// A plain-http request for the portal's pages, sent to https.
    HttpsRedirect,
    BadRequest,
    Unavailable,
}

impl Outcome {
    const ALL: [(Outcome, &'static str); 14] = [
        (Outcome::HttpsRedirect, "https_redirect"),
        (Outcome::Splash, "splash"),
        (Outcome::Welcome, "welcome"),
        (Outcome::Signage, "signage"),
        (Outcome::Poster, "poster"),
        (Outcome::Api, "api"),
        (Outcome::Asset, "asset"),
        (Outcome::Accept, "accept"),
        (Outcome::ProbeRedirect, "probe_redirect"),
        (Outcome::ProbeSuccess, "probe_success"),
        (Outcome::WelcomeRedirect, "welcome_redirect"),
        (Outcome::NotFound, "not_found"),
        (Outcome::BadRequest, "bad_request"),
        (Outcome::Unavailable, "unavailable"),
    ];
}

/// Upper bounds of the accept-latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Name, type and help of every metric family, in exposition order.
const FAMILIES: [(&str, &str, &str); 14] = [
    ("portico_rejected_total", "counter", "Requests and connections turned away by a limit, by reason."),
    ("portico_reloads_total", "counter", "Reloads (SIGHUP) of the config and campaign, by result."),
    ("portico_requests_total", "counter", "Portal requests by outcome."),
    ("portico_splash_views_total", "counter", "Splash pages shown, by language."),
    ("portico_accepts_total", "counter", "Connect taps, by result."),
    ("portico_grants_active", "gauge", "Devices with a live grant."),
    ("portico_store_errors_total", "counter", "Failed writes of the grant store."),
    ("portico_connections_total", "counter", "Connections accepted by the portal listeners."),
    ("portico_tls_handshake_failures_total", "counter", "TLS handshakes that failed or timed out."),
    ("portico_firewall_transactions_total", "counter", "Firewall transactions; a burst of grants shares one."),
    ("portico_firewall_repairs_total", "counter", "Times the firewall's rules were found changed and rebuilt."),
    (
        "portico_firewall_comparisons_total",
        "counter",
        "Times the kernel's table was listed and compared, because someone else changed the ruleset.",
    ),
    ("portico_accept_duration_seconds", "histogram", "Connect tap to answer, including firewall and disk."),
    ("portico_uptime_seconds", "gauge", "Seconds since start."),
];

pub struct Metrics {
    started: Instant,
    requests: [AtomicU64; Outcome::ALL.len()],
    /// Splash views per campaign language, in the campaign's order.
    /// Keyed by tag, not index, so counts survive a reload that changes the
    /// campaign's languages. Read-locked per splash view: a handful of
    /// entries, and the write lock is taken only when a new tag first appears.
    splash_by_lang: RwLock<Vec<(String, AtomicU64)>>,
    rejections: [AtomicU64; Rejection::ALL.len()],
    /// Reloads applied and refused.
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub accepts_ok: AtomicU64,
    pub accepts_failed: AtomicU64,
    pub store_errors: AtomicU64,
    pub connections: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub firewall_batches: AtomicU64,
    pub firewall_repairs: AtomicU64,
    pub firewall_comparisons: AtomicU64,
    accept_buckets: [AtomicU64; BUCKETS.len()],
    accept_count: AtomicU64,
    accept_micros: AtomicU64,
}

impl Metrics {
    pub fn new(languages: &[String]) -> Metrics {
        Metrics {
            started: Instant::now(),
            requests: Default::default(),
            splash_by_lang: RwLock::new(languages.iter().map(|l| (l.clone(), AtomicU64::new(0))).collect()),
            rejections: Default::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            accepts_ok: AtomicU64::new(0),
            accepts_failed: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            firewall_batches: AtomicU64::new(0),
            firewall_repairs: AtomicU64::new(0),
            firewall_comparisons: AtomicU64::new(0),
            accept_buckets: Default::default(),
            accept_count: AtomicU64::new(0),
            accept_micros: AtomicU64::new(0),
        }
    }

    pub fn request(&self, outcome: Outcome) {
        let i = Outcome::ALL.iter().position(|(o, _)| *o == outcome).unwrap_or(0);
        self.requests[i].fetch_add(1, Relaxed);
    }

    pub fn requests(&self, outcome: Outcome) -> u64 {
        let i = Outcome::ALL.iter().position(|(o, _)| *o == outcome).unwrap_or(0);
        self.requests[i].load(Relaxed)
    }

    pub fn splash_view(&self, lang: &str) {
        let counts = self.splash_by_lang.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = counts.iter().find(|(tag, _)| tag == lang) {
            n.fetch_add(1, Relaxed);
            return;
        }
        drop(counts);
        let mut counts = self.splash_by_lang.write().unwrap_or_else(|e| e.into_inner());
        match counts.iter().find(|(tag, _)| tag == lang) {
            Some((_, n)) => n.fetch_add(1, Relaxed),
            None => {
                counts.push((lang.to_owned(), AtomicU64::new(1)));
                0
            }
        };
    }

    pub fn rejected(&self, why: Rejection) {
        let i = Rejection::ALL.iter().position(|(r, _)| *r == why).unwrap_or(0);
        self.rejections[i].fetch_add(1, Relaxed);
    }

    pub fn accept_latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.accept_buckets[i].fetch_add(1, Relaxed);
        }
        self.accept_count.fetch_add(1, Relaxed);
        self.accept_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The Prometheus text exposition; `grants_active` is read by the caller
    /// from the grant table at scrape time.
    pub fn render(&self, venue: &str, grants_active: usize) -> String {
        let venue = venue.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
        let v = format!("venue=\"{venue}\"");
        // (family, sample line); printed below grouped under each family's
        // HELP and TYPE, as the text format expects.
        let mut lines: Vec<(&str, String)> = Vec::new();
        let mut add = |family: &'static str, line: String| lines.push((family, line));
        for (i, (_, name)) in Outcome::ALL.iter().enumerate() {
            let n = self.requests[i].load(Relaxed);
            add("portico_requests_total", format!("portico_requests_total{{{v},outcome=\"{name}\"}} {n}"));
        }
        for (lang, n) in self.splash_by_lang.read().unwrap_or_else(|e| e.into_inner()).iter() {
            let n = n.load(Relaxed);
            add("portico_splash_views_total", format!("portico_splash_views_total{{{v},lang=\"{lang}\"}} {n}"));
        }
        for (result, n) in [("ok", &self.accepts_ok), ("failed", &self.accepts_failed)] {
            let n = n.load(Relaxed);
            add("portico_accepts_total", format!("portico_accepts_total{{{v},result=\"{result}\"}} {n}"));
        }
        add("portico_grants_active", format!("portico_grants_active{{{v}}} {grants_active}"));
        for (name, n) in [
            ("portico_store_errors_total", &self.store_errors),
            ("portico_connections_total", &self.connections),
            ("portico_tls_handshake_failures_total", &self.tls_handshake_failures),
            ("portico_firewall_transactions_total", &self.firewall_batches),
            ("portico_firewall_repairs_total", &self.firewall_repairs),
            ("portico_firewall_comparisons_total", &self.firewall_comparisons),
        ] {
            add(name, format!("{name}{{{v}}} {}", n.load(Relaxed)));
        }
        for (result, n) in [("ok", &self.reloads_ok), ("refused", &self.reloads_failed)] {
            let n = n.load(Relaxed);
            add("portico_reloads_total", format!("portico_reloads_total{{{v},result=\"{result}\"}} {n}"));
        }
        for (i, (_, reason)) in Rejection::ALL.iter().enumerate() {
            let n = self.rejections[i].load(Relaxed);
            add("portico_rejected_total", format!("portico_rejected_total{{{v},reason=\"{reason}\"}} {n}"));
        }
        let histogram = "portico_accept_duration_seconds";
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.accept_buckets[i].load(Relaxed);
            add(histogram, format!("{histogram}_bucket{{{v},le=\"{bound}\"}} {cumulative}"));
        }
        let count = self.accept_count.load(Relaxed);
        add(histogram, format!("{histogram}_bucket{{{v},le=\"+Inf\"}} {count}"));
        let sum = self.accept_micros.load(Relaxed) as f64 / 1e6;
        add(histogram, format!("{histogram}_sum{{{v}}} {sum}"));
        add(histogram, format!("{histogram}_count{{{v}}} {count}"));
        add("portico_uptime_seconds", format!("portico_uptime_seconds {}", self.uptime().as_secs()));

        let mut out = String::with_capacity(4096);
        for (family, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
            for (_, line) in lines.iter().filter(|(f, _)| *f == family) {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_and_escapes_the_venue() {
        let m = Metrics::new(&["vi".into(), "en".into()]);
        m.request(Outcome::ProbeRedirect);
        m.request(Outcome::ProbeRedirect);
        m.splash_view("en");
        m.accept_latency(Duration::from_millis(3));
        let text = m.render("Ga \"A\"", 7);
        assert!(text.contains("portico_requests_total{venue=\"Ga \\\"A\\\"\",outcome=\"probe_redirect\"} 2"), "{text}");
        assert!(text.contains("lang=\"en\"} 1"));
        assert!(text.contains("portico_grants_active{venue=\"Ga \\\"A\\\"\"} 7"));
        assert!(text.contains("le=\"0.005\"} 1") && text.contains("le=\"0.0025\"} 0"));
        // Each family's samples come right after its own HELP and TYPE.
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(family), "{line} is outside its family {family}");
            }
        }
        assert_eq!(text.matches("# TYPE ").count(), FAMILIES.len());
    }
}
