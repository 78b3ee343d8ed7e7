//! Counters the operator and the province read: Prometheus text on the admin
//! listener's `/metrics`, and the same numbers on its status page.
//!
//! Plain atomics with relaxed ordering: each number is independent, a scrape
//! may see one a moment older than another, and the hot path pays one
//! uncontended increment. No client crate: `prometheus-client` writes only
//! OpenMetrics, which the linter of Debian's promtool rejects (see [`text`]),
//! and its histogram takes a lock per observation; the text format is a
//! small writer here.
//!
//! Who the numbers are about is on one series, `portico_venue_info{venue,
//! province, kind} 1`, not a label on every series: a dashboard joins it
//! (`* on(instance) group_left(venue, province, kind) portico_venue_info`),
//! and renaming a venue does not split every counter in two.
//!
//! What must stay true: the names and label sets written here are a
//! stable surface that scripts outside the repository read; extend them,
//! never rename. An `ok` result comes before a failed one (a reader may
//! take the first line of a family). A label value is counted under its
//! own name or the code does not compile: [`Outcome`] and
//! [`Rejection`] are declared with `labelled!`, which makes
//! the variants, their labels and their counters one list.

mod process;
pub mod text;

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Venue;
use crate::counts::{Action, Day, Measure, Measures, Tally};
pub use process::Process;
use text::{Kind, Text};

/// What `/metrics` is served as.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Declares an enum whose variants are the values of one metric label,
/// each variant with its label beside it. `ALL` and `label()` are made
/// from that one list, so no variant can lack a label, and `v as usize`
/// is its index in `ALL` and in any `[_; ALL.len()]` of counters: a
/// missing variant cannot compile, and none is counted under another's
/// name.
macro_rules! labelled {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order (the exposition's):
            /// `ALL[v as usize] == v`.
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];

            /// The metric label value.
            pub const fn label(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }
        }
    };
}

labelled! {
    /// Why a request or connection was turned away; also the metric label.
    pub enum Rejection {
        ClientRate => "client_rate",
        GlobalRate => "global_rate",
        ClientConnections => "client_connections",
        /// A request body (the accept form) that did not arrive in time.
        BodyTimeout => "body_timeout",
        /// An admin request without the right token (`admin.token_file`).
        AdminToken => "admin_token",
        /// An admin request from an address out of token attempts.
        AdminAttempts => "admin_attempts",
    }
}

labelled! {
    /// What a request to the portal turned out to be.
    pub enum Outcome {
        /// A plain-http request for the portal's pages, sent to https.
        HttpsRedirect => "https_redirect",
        Splash => "splash",
        Welcome => "welcome",
        Signage => "signage",
        Poster => "poster",
        Api => "api",
        Asset => "asset",
        Accept => "accept",
        /// A store button on `/welcome`, sent on to the store.
        Store => "store",
        /// "Already installed?" answered.
        Installed => "installed",
        /// A client without a grant, sent to the portal.
        ProbeRedirect => "probe_redirect",
        /// A known probe from a granted client, answered "online".
        ProbeSuccess => "probe_success",
        /// Any other foreign request from a granted client, sent to `/welcome`.
        WelcomeRedirect => "welcome_redirect",
        NotFound => "not_found",
        BadRequest => "bad_request",
        Unavailable => "unavailable",
    }
}

labelled! {
    /// How a fetch of a campaign bundle ended (see [`crate::fleet`]).
    pub enum Fetch {
        /// A new bundle, verified, checked and swapped in.
        New => "new",
        NotModified => "not_modified",
        /// Fetched, and refused: its signature, size or campaign.
        Refused => "refused",
        /// Not fetched: the server, the network, the trust roots.
        Failed => "failed",
    }
}

/// Upper bounds of the accept-latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

pub struct Metrics {
    started: Instant,
    requests: [AtomicU64; Outcome::ALL.len()],
    /// Splash views per campaign and language, the default campaign's
    /// languages first in its order. Keyed by name and tag, not index, so
    /// counts survive a reload that changes the campaigns. Read-locked per
    /// splash view: a handful of entries, and the write lock is taken only
    /// when a new pair first appears.
    splash_views: RwLock<Vec<(String, String, AtomicU64)>>,
    rejections: [AtomicU64; Rejection::ALL.len()],
    /// Reloads applied and refused.
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Whether the last load of the config and campaign (start-up's, or a
    /// reload's) was applied, and when it ended, in Unix seconds.
    last_reload_ok: AtomicBool,
    last_reload_at: AtomicU64,
    pub accepts_ok: AtomicU64,
    pub accepts_failed: AtomicU64,
    fetches: [AtomicU64; Fetch::ALL.len()],
    pub store_errors: AtomicU64,
    pub connections: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub firewall_batches: AtomicU64,
    pub firewall_repairs: AtomicU64,
    /// When the last repair ended, in Unix seconds; 0 before the first.
    firewall_repaired_at: AtomicU64,
    pub firewall_comparisons: AtomicU64,
    accept_buckets: [AtomicU64; BUCKETS.len()],
    accept_count: AtomicU64,
    accept_micros: AtomicU64,
}

/// What a scrape reads from outside the counters, at scrape time.
pub struct Scrape<'a> {
    pub venue: &'a Venue,
    /// Devices with a live grant now.
    pub grants_active: usize,
    /// Whether the grant store refuses writes (see [`crate::sessions`]).
    pub store_degraded: bool,
    /// Whether the daily counts cannot be written (see [`crate::counts`]).
    pub counts_degraded: bool,
    /// Whether the firewall refused the last install of the rules.
    pub firewall_refused: bool,
    /// When the served TLS certificate expires; `None` without `[tls]`.
    pub tls_expiry: Option<SystemTime>,
    /// Today's daily counts (see [`crate::counts`]), and the venue's date.
    pub today: (Day, &'a Tally),
    /// The campaigns on the air today, counted at zero until seen.
    pub on_air: &'a [&'a str],
    /// The alert in force: whether it opened the gate, and since when.
    pub alert: Option<(bool, SystemTime)>,
}

impl Metrics {
    /// The counters at zero, just after the config and campaign were
    /// loaded at start-up (which counts as the last load until a reload).
    pub fn new(campaign: &str, languages: &[String]) -> Metrics {
        Metrics {
            started: Instant::now(),
            requests: Default::default(),
            splash_views: RwLock::new(
                languages.iter().map(|l| (campaign.to_owned(), l.clone(), AtomicU64::new(0))).collect(),
            ),
            rejections: Default::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_reload_ok: AtomicBool::new(true),
            last_reload_at: AtomicU64::new(unix_seconds(SystemTime::now())),
            accepts_ok: AtomicU64::new(0),
            accepts_failed: AtomicU64::new(0),
            fetches: Default::default(),
            store_errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            firewall_batches: AtomicU64::new(0),
            firewall_repairs: AtomicU64::new(0),
            firewall_repaired_at: AtomicU64::new(0),
            firewall_comparisons: AtomicU64::new(0),
            accept_buckets: Default::default(),
            accept_count: AtomicU64::new(0),
            accept_micros: AtomicU64::new(0),
        }
    }

    pub fn request(&self, outcome: Outcome) {
        self.requests[outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn requests(&self, outcome: Outcome) -> u64 {
        self.requests[outcome as usize].load(Relaxed)
    }

    pub fn splash_view(&self, campaign: &str, lang: &str) {
        let is = |(c, l, _): &&(String, String, AtomicU64)| c == campaign && l == lang;
        let counts = self.splash_views.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, n)) = counts.iter().find(is) {
            n.fetch_add(1, Relaxed);
            return;
        }
        drop(counts);
        let mut counts = self.splash_views.write().unwrap_or_else(|e| e.into_inner());
        match counts.iter().find(is) {
            Some((_, _, n)) => n.fetch_add(1, Relaxed),
            None => {
                counts.push((campaign.to_owned(), lang.to_owned(), AtomicU64::new(1)));
                0
            }
        };
    }

    pub fn fetched(&self, how: Fetch) {
        self.fetches[how as usize].fetch_add(1, Relaxed);
    }

    pub fn rejected(&self, why: Rejection) {
        self.rejections[why as usize].fetch_add(1, Relaxed);
    }

    /// A reload (SIGHUP) ended: applied, or refused and the old version
    /// kept.
    pub fn reloaded(&self, applied: bool) {
        let counter = if applied { &self.reloads_ok } else { &self.reloads_failed };
        counter.fetch_add(1, Relaxed);
        self.last_reload_ok.store(applied, Relaxed);
        self.last_reload_at.store(unix_seconds(SystemTime::now()), Relaxed);
    }

    /// The firewall's rules were found changed and put right.
    pub fn firewall_repaired(&self) {
        self.firewall_repairs.fetch_add(1, Relaxed);
        self.firewall_repaired_at.store(unix_seconds(SystemTime::now()), Relaxed);
    }

    /// When the firewall's rules were last put right, if ever since start.
    pub fn last_firewall_repair(&self) -> Option<SystemTime> {
        let at = self.firewall_repaired_at.load(Relaxed);
        (at > 0).then(|| UNIX_EPOCH + Duration::from_secs(at))
    }

    /// Whether the last load of the config and campaign was applied, and
    /// when it ended.
    pub fn last_reload(&self) -> (bool, SystemTime) {
        let at = self.last_reload_at.load(Relaxed);
        (self.last_reload_ok.load(Relaxed), UNIX_EPOCH + Duration::from_secs(at))
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

    /// The exposition ([`CONTENT_TYPE`]) of every counter, with what
    /// `scrape` read, and this process's own numbers.
    pub fn render(&self, scrape: &Scrape) -> String {
        self.render_with(scrape, &Process::read())
    }

    fn render_with(&self, scrape: &Scrape, process: &Process) -> String {
        let mut text = Text::new();
        let venue = scrape.venue;
        text.family("portico_venue_info", Kind::Gauge, "The venue these numbers are from; always 1.").sample(
            &[
                ("venue", venue.name.as_str()),
                ("province", venue.province.as_deref().unwrap_or("")),
                ("kind", venue.kind.as_str()),
            ],
            1u64,
        );
        text.family("portico_build_info", Kind::Gauge, "The version of Portico serving; always 1.")
            .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1u64);

        let mut rejected = text.family(
            "portico_rejected_total",
            Kind::Counter,
            "Requests and connections turned away by a limit, by reason.",
        );
        for why in Rejection::ALL {
            rejected.sample(&[("reason", why.label())], self.rejections[why as usize].load(Relaxed));
        }
        text.family("portico_reloads_total", Kind::Counter, "Reloads (SIGHUP) of the config and campaign, by result.")
            .sample(&[("result", "ok")], self.reloads_ok.load(Relaxed))
            .sample(&[("result", "refused")], self.reloads_failed.load(Relaxed));
        let mut requests = text.family("portico_requests_total", Kind::Counter, "Portal requests by outcome.");
        for outcome in Outcome::ALL {
            requests.sample(&[("outcome", outcome.label())], self.requests(outcome));
        }
        let mut splash =
            text.family("portico_splash_views_total", Kind::Counter, "Splash pages shown, by campaign and language.");
        for (campaign, lang, n) in self.splash_views.read().unwrap_or_else(|e| e.into_inner()).iter() {
            splash.sample(&[("campaign", campaign.as_str()), ("lang", lang.as_str())], n.load(Relaxed));
        }
        let mut fetches = text.family(
            "portico_campaign_bundle_fetches_total",
            Kind::Counter,
            "Fetches of the campaign bundles, by result.",
        );
        for how in Fetch::ALL {
            fetches.sample(&[("result", how.label())], self.fetches[how as usize].load(Relaxed));
        }
        text.family("portico_accepts_total", Kind::Counter, "Connect taps, by result.")
            .sample(&[("result", "ok")], self.accepts_ok.load(Relaxed))
            .sample(&[("result", "failed")], self.accepts_failed.load(Relaxed));
        text.family("portico_grants_active", Kind::Gauge, "Devices with a live grant.")
            .sample(&[], scrape.grants_active);
        for (name, help, n) in [
            ("portico_store_errors_total", "Failed writes of the grant store.", &self.store_errors),
            ("portico_connections_total", "Connections accepted by the portal listeners.", &self.connections),
            (
                "portico_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out.",
                &self.tls_handshake_failures,
            ),
            (
                "portico_firewall_transactions_total",
                "Firewall transactions; a burst of grants shares one.",
                &self.firewall_batches,
            ),
            (
                "portico_firewall_repairs_total",
                "Times the firewall's rules were found changed and rebuilt.",
                &self.firewall_repairs,
            ),
            (
                "portico_firewall_comparisons_total",
                "Times the kernel's table was listed and compared, because someone else changed the ruleset.",
                &self.firewall_comparisons,
            ),
        ] {
            text.family(name, Kind::Counter, help).sample(&[], n.load(Relaxed));
        }
        self.write_accept_histogram(&mut text);
        text.family("portico_uptime_seconds", Kind::Gauge, "Seconds since start.").sample(&[], self.uptime().as_secs());

        text.family(
            "portico_last_reload_success",
            Kind::Gauge,
            "Whether the last load of the config and campaign (start-up's or a reload's) was applied.",
        )
        .sample(&[], self.last_reload_ok.load(Relaxed));
        text.family(
            "portico_last_reload_timestamp_seconds",
            Kind::Gauge,
            "When the last load of the config and campaign ended, in Unix time.",
        )
        .sample(&[], self.last_reload_at.load(Relaxed));
        text.family(
            "portico_store_degraded",
            Kind::Gauge,
            "Whether the grant store refuses writes; grants are kept in memory meanwhile.",
        )
        .sample(&[], scrape.store_degraded);
        text.family(
            "portico_counts_degraded",
            Kind::Gauge,
            "Whether the daily counts cannot be written; they are kept in memory meanwhile.",
        )
        .sample(&[], scrape.counts_degraded);
        text.family(
            "portico_firewall_refused",
            Kind::Gauge,
            "Whether the firewall refused the last install of the rules; retried until it takes them.",
        )
        .sample(&[], scrape.firewall_refused);
        if let Some(expiry) = scrape.tls_expiry {
            text.family(
                "portico_tls_certificate_expiry_seconds",
                Kind::Gauge,
                "When the served TLS certificate expires (its notAfter), in Unix time.",
            )
            .sample(&[], unix_seconds(expiry));
        }
        text.family(
            "portico_alert_active",
            Kind::Gauge,
            "Whether an emergency notice is shown in the campaigns' place.",
        )
        .sample(&[], scrape.alert.is_some());
        text.family(
            "portico_alert_open_gate",
            Kind::Gauge,
            "Whether the alert lets every device online without a tap.",
        )
        .sample(&[], scrape.alert.is_some_and(|(open, _)| open));
        if let Some((_, since)) = scrape.alert {
            text.family(
                "portico_alert_since_timestamp_seconds",
                Kind::Gauge,
                "When the alert in force was set, in Unix time.",
            )
            .sample(&[], unix_seconds(since));
        }
        write_today(&mut text, scrape.today, scrape.on_air);

        write_process(&mut text, process);
        text.finish()
    }

    fn write_accept_histogram(&self, text: &mut Text) {
        let mut family = text.family(
            "portico_accept_duration_seconds",
            Kind::Histogram,
            "Connect tap to answer, including firewall and disk.",
        );
        let mut cumulative = 0;
        let mut le = String::new();
        for (bound, n) in BUCKETS.iter().zip(&self.accept_buckets) {
            cumulative += n.load(Relaxed);
            le.clear();
            text::Value::write(bound, &mut le);
            family.suffixed("_bucket", &[("le", le.as_str())], cumulative);
        }
        // Read after the buckets, and each observation counts its bucket
        // first: an accept answered mid-scrape must not make +Inf smaller
        // than the last bucket.
        let count = self.accept_count.load(Relaxed).max(cumulative);
        family.suffixed("_bucket", &[("le", "+Inf")], count);
        family.suffixed("_sum", &[], self.accept_micros.load(Relaxed) as f64 / 1e6);
        family.suffixed("_count", &[], count);
    }
}

/// The report's numbers for today, as gauges labelled with the venue's
/// date and the campaign: each day is its own series, so the last sample
/// of a date is that day's total, whatever the scrape times and the
/// venue's zone (the dashboard's per-day panels read them that way). A new
/// date starts at zero; the day before keeps its final value in
/// Prometheus. A device counts under one campaign a day, so the sum over
/// `campaign` is the venue's day.
fn write_today(text: &mut Text, (day, tally): (Day, &Tally), on_air: &[&str]) {
    let date = day.to_string();
    let mut campaigns: Vec<(&str, Measures)> = tally.by_campaign.iter().map(|(c, m)| (c.as_str(), *m)).collect();
    for name in on_air {
        if !campaigns.iter().any(|(c, _)| c == name) {
            campaigns.push((name, Measures::default()));
        }
    }
    for (name, help, measure) in [
        ("portico_day_devices_shown", "Devices shown the notice today (the venue's day), each once.", Measure::Shown),
        ("portico_day_devices_connected", "Devices that tapped Connect today, each once.", Measure::Connected),
        (
            "portico_day_devices_returning",
            "Devices shown the notice again today after a session of theirs ended.",
            Measure::Returning,
        ),
        ("portico_day_splash_views", "Splash pages shown today, every view.", Measure::Views),
    ] {
        let mut family = text.family(name, Kind::Gauge, help);
        for (campaign, m) in &campaigns {
            family.sample(&[("date", date.as_str()), ("campaign", campaign)], m.get(measure));
        }
    }
    let mut family = text.family(
        "portico_day_devices_acted",
        Kind::Gauge,
        "Devices that went to a store from /welcome, or said the app is installed, today, each once.",
    );
    for (campaign, _) in &campaigns {
        let actions = tally.actions_by_campaign.get(*campaign).copied().unwrap_or_default();
        for action in Action::ALL {
            let labels = [("date", date.as_str()), ("campaign", campaign), ("action", action.label())];
            family.sample(&labels, actions.get(action));
        }
    }
}

/// The standard process families, each only if it could be read.
fn write_process(text: &mut Text, p: &Process) {
    if let Some(v) = p.resident_bytes {
        text.family("process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes.").sample(&[], v);
    }
    if let Some(v) = p.open_fds {
        text.family("process_open_fds", Kind::Gauge, "Number of open file descriptors.").sample(&[], v);
    }
    if let Some(v) = p.max_fds {
        text.family("process_max_fds", Kind::Gauge, "Maximum number of open file descriptors.").sample(&[], v);
    }
    if let Some(v) = p.cpu_seconds {
        text.family("process_cpu_seconds_total", Kind::Counter, "Total user and system CPU time spent in seconds.")
            .sample(&[], v);
    }
    if let Some(v) = p.start_time_seconds {
        text.family(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
        )
        .sample(&[], v);
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, VenueKind};

    fn venue(name: &str) -> Venue {
        let mut venue = Config::demo().venue;
        (venue.name, venue.kind, venue.province) = (name.into(), VenueKind::Station, Some("Đắk Lắk".into()));
        venue
    }

    static NOBODY: std::sync::LazyLock<Tally> = std::sync::LazyLock::new(Tally::default);

    fn scrape(venue: &Venue) -> Scrape<'_> {
        let today = Day::new(2026, 3, 1).unwrap();
        Scrape {
            venue,
            grants_active: 7,
            store_degraded: false,
            counts_degraded: false,
            firewall_refused: true,
            tls_expiry: None,
            today: (today, &*NOBODY),
            on_air: &["Bluezone"],
            alert: None,
        }
    }

    /// The value of the sample whose name and labels are exactly `series`.
    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series))
            .map(|l| l.rsplit_once(' ').unwrap().1)
    }

    #[test]
    fn every_label_is_its_own_and_indexes_its_counter() {
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, i);
            let label = outcome.label();
            assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{label}");
            assert_eq!(Outcome::ALL.iter().filter(|o| o.label() == label).count(), 1, "{label} twice");
        }
        for (i, why) in Rejection::ALL.into_iter().enumerate() {
            assert_eq!(why as usize, i);
        }
        assert_eq!(Outcome::HttpsRedirect.label(), "https_redirect");
        assert_eq!(Outcome::ProbeRedirect.label(), "probe_redirect");
        assert_eq!(Rejection::BodyTimeout.label(), "body_timeout");

        // Each outcome counted once is counted under its own label only.
        let m = Metrics::new("Bluezone", &[]);
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                m.request(outcome);
            }
        }
        let v = venue("Ga");
        let text = m.render(&scrape(&v));
        for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
            let series = format!("portico_requests_total{{outcome=\"{}\"}}", outcome.label());
            assert_eq!(sample(&text, &series), Some((i + 1).to_string().as_str()), "{text}");
        }
    }

    #[test]
    fn render_counts_with_the_venue_on_its_own_series() {
        let m = Metrics::new("Bluezone", &["vi".into(), "en".into()]);
        m.request(Outcome::ProbeRedirect);
        m.request(Outcome::ProbeRedirect);
        m.splash_view("Bluezone", "en");
        m.accept_latency(Duration::from_millis(3));
        m.rejected(Rejection::GlobalRate);
        m.reloaded(false);
        let v = venue("Ga \"A\"\\B");
        let text = m.render(&Scrape { store_degraded: true, ..scrape(&v) });
        let has = |series: &str, value: &str| {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        };
        has("portico_venue_info{venue=\"Ga \\\"A\\\"\\\\B\",province=\"Đắk Lắk\",kind=\"station\"}", "1");
        has(&format!("portico_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), "1");
        has("portico_requests_total{outcome=\"probe_redirect\"}", "2");
        has("portico_requests_total{outcome=\"splash\"}", "0");
        has("portico_splash_views_total{campaign=\"Bluezone\",lang=\"en\"}", "1");
        has("portico_splash_views_total{campaign=\"Bluezone\",lang=\"vi\"}", "0");
        has("portico_rejected_total{reason=\"global_rate\"}", "1");
        has("portico_rejected_total{reason=\"client_rate\"}", "0");
        has("portico_reloads_total{result=\"refused\"}", "1");
        has("portico_grants_active", "7");
        has("portico_store_degraded", "1");
        has("portico_alert_active", "0");
        has("portico_counts_degraded", "0");
        has("portico_firewall_refused", "1");
        has("portico_alert_open_gate", "0");
        has("portico_last_reload_success", "0");
        has("portico_accept_duration_seconds_bucket{le=\"0.0025\"}", "0");
        has("portico_accept_duration_seconds_bucket{le=\"0.005\"}", "1");
        has("portico_accept_duration_seconds_bucket{le=\"+Inf\"}", "1");
        has("portico_accept_duration_seconds_count", "1");
        has("portico_accept_duration_seconds_sum", "0.003");
        has("portico_day_devices_shown{date=\"2026-03-01\",campaign=\"Bluezone\"}", "0");
        assert!(!text.contains("portico_tls_certificate_expiry_seconds"), "no [tls], no expiry: {text}");
        // The venue is only on its info series.
        assert_eq!(text.matches("venue=").count(), 1, "{text}");
        // `ok` before the failed result: a reader may take the first line.
        let first = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap().to_owned();
        assert!(first("portico_reloads_total{").contains("result=\"ok\""));
        assert!(first("portico_accepts_total{").contains("result=\"ok\""));
    }

    #[test]
    fn today_is_a_series_of_its_date_and_campaign() {
        let m = Metrics::new("Bluezone", &[]);
        let v = venue("Ga");
        let shown = |shown, views| crate::counts::Measures { shown, connected: 1, returning: 0, views };
        let by_campaign = [("PC-Covid".to_owned(), shown(3, 5)), ("Tiêm chủng".to_owned(), shown(2, 4))];
        let tally = Tally { by_campaign: by_campaign.into_iter().collect(), ..Tally::default() };
        let today = (Day::new(2026, 12, 31).unwrap(), &tally);
        // On the air but not seen yet: at zero.
        let text = m.render(&Scrape { today, on_air: &["PC-Covid", "Bão số 3"], ..scrape(&v) });
        for (campaign, shown, views) in [("PC-Covid", "3", "5"), ("Tiêm chủng", "2", "4"), ("Bão số 3", "0", "0")]
        {
            let labels = format!("{{date=\"2026-12-31\",campaign=\"{campaign}\"}}");
            assert_eq!(sample(&text, &format!("portico_day_devices_shown{labels}")), Some(shown), "{text}");
            assert_eq!(sample(&text, &format!("portico_day_splash_views{labels}")), Some(views), "{text}");
        }
        assert_eq!(text.matches("portico_day_devices_connected{").count(), 3, "{text}");
    }

    #[test]
    fn each_family_is_typed_once_and_its_samples_follow_it() {
        let m = Metrics::new("Bluezone", &["vi".into()]);
        let v = venue("Ga");
        let expiry = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let process = Process {
            resident_bytes: Some(1 << 20),
            open_fds: Some(9),
            max_fds: Some(1024),
            cpu_seconds: Some(0.25),
            start_time_seconds: Some(1_767_225_600.5),
        };
        let text = m.render_with(&Scrape { tls_expiry: Some(expiry), ..scrape(&v) }, &process);
        assert_eq!(sample(&text, "portico_tls_certificate_expiry_seconds"), Some("1800000000"));
        assert_eq!(sample(&text, "process_resident_memory_bytes"), Some("1048576"));
        assert_eq!(sample(&text, "process_cpu_seconds_total"), Some("0.25"));
        assert_eq!(sample(&text, "process_start_time_seconds"), Some("1767225600.5"));
        let mut families = Vec::new();
        let mut family = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
                assert!(!families.contains(&family), "{family} typed twice");
                families.push(family);
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let own = name == family
                    || ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(family));
                assert!(own, "{line} is outside its family {family}");
            }
        }
        // A counter's name ends in _total, as the linter wants.
        for line in text.lines().filter(|l| l.ends_with(" counter")) {
            assert!(line.trim_end_matches(" counter").ends_with("_total"), "{line}");
        }
        let no_process = m.render_with(&scrape(&v), &Process::default());
        assert!(!no_process.contains("process_"), "nothing is made up where /proc is not: {no_process}");
    }
}
