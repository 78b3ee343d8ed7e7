//! The operator's page: `GET /` on the admin listener, what a venue's
//! operator opens on a phone to see at a glance that the gate works. It
//! shows the health of each part (firewall, grant store, daily counts, TLS
//! certificate, campaign, last reload), the devices online now, today's
//! counts, and today by hour and the last [`DAYS`] days as bar charts.
//!
//! What must stay true: no JavaScript and nothing from another origin (one
//! small inline stylesheet, the charts inline SVG), readable at 360 px
//! wide; every problem is said in words, never by colour alone; every chart
//! has a text alternative and its numbers in a table; a chart with nothing
//! to show says so instead of dividing by zero. The page is in Vietnamese
//! or English, English unless asked: an operator may be foreign, and a
//! Vietnamese browser asks for Vietnamese. Rendering is pure: [`page`]
//! takes [`OperatorFacts`], plain numbers that `http::admin` gathers, so
//! every rule here is a unit test.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

use crate::config::{Venue, VenueKind};
use crate::counts::zone::unix_secs;
use crate::counts::{Day, Measures, Tally, Zone};

/// Days in the longer chart, today the last.
pub const DAYS: u32 = 30;

/// A certificate closer than this to its expiry is a warning: time for a
/// renewal that failed to be noticed before the phones refuse it.
const CERT_WARNING_DAYS: i64 = 14;

/// The language of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Vi,
}

impl Lang {
    /// `?lang=` in `query` first, then `Accept-Language` by q-value (`vi-VN`
    /// is `vi`), then English.
    pub fn choose(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        const TAGS: [&str; 2] = ["en", "vi"];
        let asked = query.and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("lang=")));
        match crate::lang::negotiate(&TAGS, asked, accept_language) {
            Some(1) => Lang::Vi,
            _ => Lang::En,
        }
    }

    pub fn tag(self) -> &'static str {
        self.strings().tag
    }

    fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Vi => &VI,
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Vi,
            Lang::Vi => Lang::En,
        }
    }

    fn kind(self, kind: VenueKind) -> &'static str {
        use VenueKind::*;
        match (self, kind) {
            (Lang::En, Station) => "Station",
            (Lang::En, Airport) => "Airport",
            (Lang::En, Port) => "Port",
            (Lang::En, Bus) => "Bus station",
            (Lang::En, Ferry) => "Ferry terminal",
            (Lang::En, Other) => "Public venue",
            (Lang::Vi, Station) => "Nhà ga",
            (Lang::Vi, Airport) => "Sân bay",
            (Lang::Vi, Port) => "Cảng",
            (Lang::Vi, Bus) => "Bến xe",
            (Lang::Vi, Ferry) => "Bến phà",
            (Lang::Vi, Other) => "Địa điểm công cộng",
        }
    }

    /// `1 Mar 2026` / `01/03/2026`.
    fn date(self, day: Day) -> String {
        let d = day.date();
        match self {
            Lang::En => format!("{} {} {}", d.day(), MONTHS[d.month() as usize - 1], d.year()),
            Lang::Vi => format!("{:02}/{:02}/{}", d.day(), d.month(), d.year()),
        }
    }

    /// A chart's axis: `1 Mar` / `01/03`.
    fn short_date(self, day: Day) -> String {
        let d = day.date();
        match self {
            Lang::En => format!("{} {}", d.day(), MONTHS[d.month() as usize - 1]),
            Lang::Vi => format!("{:02}/{:02}", d.day(), d.month()),
        }
    }

    fn time(self, t: LocalTime) -> String {
        match self {
            Lang::En => format!("{}, {:02}:{:02}", self.date(t.day), t.hour, t.minute),
            Lang::Vi => format!("{:02}:{:02}, {}", t.hour, t.minute, self.date(t.day)),
        }
    }

    fn days(self, n: i64) -> String {
        match (self, n.abs()) {
            (Lang::En, 1) => format!("{n} day"),
            (Lang::En, _) => format!("{n} days"),
            (Lang::Vi, _) => format!("{n} ngày"),
        }
    }

    fn uptime(self, up: Duration) -> String {
        let minutes = up.as_secs() / 60;
        let (d, h, m) = (minutes / (24 * 60), minutes / 60 % 24, minutes % 60);
        let units = match self {
            Lang::En => [" d", " h", " min"],
            Lang::Vi => [" ngày", " giờ", " phút"],
        };
        let mut out = String::new();
        for (n, unit) in [d, h, m].into_iter().zip(units) {
            if n > 0 || (unit == units[2] && out.is_empty()) {
                let _ = write!(out, "{}{n}{unit}", if out.is_empty() { "" } else { " " });
            }
        }
        out
    }

    fn summary(self, problems: usize, warnings: usize) -> String {
        let t = self.strings();
        if problems + warnings == 0 {
            return t.all_well.to_owned();
        }
        let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = Vec::new();
        match self {
            Lang::En => {
                if problems > 0 {
                    parts.push(count(problems, "problem", "problems"));
                }
                if warnings > 0 {
                    parts.push(count(warnings, "warning", "warnings"));
                }
                format!("{}: see below.", parts.join(", "))
            }
            Lang::Vi => {
                if problems > 0 {
                    parts.push(format!("{problems} sự cố"));
                }
                if warnings > 0 {
                    parts.push(format!("{warnings} điều cần lưu ý"));
                }
                format!("Có {}: xem bên dưới.", parts.join(", "))
            }
        }
    }

    fn repairs(self, n: u64, last: Option<LocalTime>) -> String {
        match (self, last) {
            (Lang::En, Some(at)) => {
                format!(
                    "Repaired {n} {} since start, last at {}.",
                    if n == 1 { "time" } else { "times" },
                    self.time(at)
                )
            }
            (Lang::En, None) => "Never repaired since start.".into(),
            (Lang::Vi, Some(at)) => format!("Đã sửa lại {n} lần từ khi khởi động, lần cuối lúc {}.", self.time(at)),
            (Lang::Vi, None) => "Chưa phải sửa lại lần nào từ khi khởi động.".into(),
        }
    }

    fn certificate(self, c: &Certificate) -> String {
        let (date, left) = (self.date(c.expires), c.days_left);
        match self {
            Lang::En if left < 0 => format!("expired on {date}: phones refuse the portal's https; renew it"),
            Lang::En if left < CERT_WARNING_DAYS => format!("expires on {date}, {} left: renew it", self.days(left)),
            Lang::En => format!("expires on {date}, {} left", self.days(left)),
            Lang::Vi if left < 0 => {
                format!("đã hết hạn ngày {date}: điện thoại từ chối kết nối https tới cổng; cần gia hạn")
            }
            Lang::Vi if left < CERT_WARNING_DAYS => {
                format!("hết hạn ngày {date}, còn {}: cần gia hạn", self.days(left))
            }
            Lang::Vi => format!("hết hạn ngày {date}, còn {}", self.days(left)),
        }
    }

    /// The text alternative of a chart with data.
    fn busiest(self, hourly: bool, label: &str, bar: &Bar) -> String {
        let (shown, connected) = (bar.shown, bar.connected);
        match self {
            Lang::En => {
                let unit = if hourly { "hour" } else { "day" };
                let devices = if shown == 1 { "device" } else { "devices" };
                format!("Busiest {unit}: {label}, {shown} {devices} shown the notice and {connected} connected.")
            }
            Lang::Vi => {
                let unit = if hourly { "Giờ" } else { "Ngày" };
                format!("{unit} đông nhất: {label}, {shown} thiết bị đã xem thông báo và {connected} đã kết nối.")
            }
        }
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Every fixed text of the page in one language.
struct Strings {
    tag: &'static str,
    /// The language's name in itself, for the switch link.
    name: &'static str,
    page_title: &'static str,
    language_label: &'static str,
    as_of: &'static str,
    venue_time: &'static str,
    running_for: &'static str,
    health: &'static str,
    all_well: &'static str,
    ok: &'static str,
    warning: &'static str,
    problem: &'static str,
    firewall: &'static str,
    rules_installed: &'static str,
    rules_missing: &'static str,
    logs_only: &'static str,
    grant_store: &'static str,
    grants_degraded: &'static str,
    counts: &'static str,
    counts_degraded: &'static str,
    healthy: &'static str,
    tls: &'static str,
    no_tls: &'static str,
    campaign: &'static str,
    languages: &'static str,
    default_language: &'static str,
    on_air: &'static str,
    alert: &'static str,
    no_alert: &'static str,
    alert_since: &'static str,
    gate_open: &'static str,
    last_reload: &'static str,
    reload_applied: &'static str,
    reload_refused: &'static str,
    reload_kept: &'static str,
    today: &'static str,
    online_now: &'static str,
    shown: &'static str,
    connected: &'static str,
    returning: &'static str,
    views: &'static str,
    by_hour: &'static str,
    last_days: &'static str,
    legend_shown: &'static str,
    legend_connected: &'static str,
    no_data: &'static str,
    as_table: &'static str,
    hour: &'static str,
    date: &'static str,
    metrics: &'static str,
}

const EN: Strings = Strings {
    tag: "en",
    name: "English",
    page_title: "Operator's page",
    language_label: "Language",
    as_of: "As of",
    venue_time: "venue time",
    running_for: "Running for",
    health: "Health",
    all_well: "Everything is working.",
    ok: "OK",
    warning: "Warning",
    problem: "Problem",
    firewall: "Firewall",
    rules_installed: "rules installed.",
    rules_missing: "rules not installed, devices may not be held as they should; see the log.",
    logs_only: "logs only, no device is held.",
    grant_store: "Grant store",
    grants_degraded: "degraded: the disk cannot be written, grants are kept in memory only and a restart \
                      would lose them; see the log.",
    counts: "Daily counts",
    counts_degraded: "degraded: the disk cannot be written, today's counts are kept in memory only; see the log.",
    healthy: "healthy.",
    tls: "TLS certificate",
    no_tls: "no TLS.",
    campaign: "Campaign",
    languages: "languages",
    default_language: "default",
    on_air: "on the air today",
    alert: "Emergency notice",
    no_alert: "none.",
    alert_since: "shown instead of the campaign since",
    gate_open: "The gate is open: every device is online without a tap.",
    last_reload: "Last load of the config and campaign",
    reload_applied: "applied at",
    reload_refused: "refused at",
    reload_kept: "The previous config and campaign are still served; see the log, or run portico check.",
    today: "Today",
    online_now: "Devices online now",
    shown: "Devices shown the notice",
    connected: "Devices connected",
    returning: "Returning devices",
    views: "Splash views",
    by_hour: "Today by hour",
    last_days: "Last 30 days",
    legend_shown: "Shown the notice",
    legend_connected: "Connected",
    no_data: "No data yet.",
    as_table: "The numbers as a table",
    hour: "Hour",
    date: "Date",
    metrics: "Prometheus metrics",
};

const VI: Strings = Strings {
    tag: "vi",
    name: "Tiếng Việt",
    page_title: "Trang vận hành",
    language_label: "Ngôn ngữ",
    as_of: "Cập nhật lúc",
    venue_time: "theo giờ",
    running_for: "Đã chạy",
    health: "Tình trạng hệ thống",
    all_well: "Mọi thứ đang hoạt động bình thường.",
    ok: "Tốt",
    warning: "Lưu ý",
    problem: "Sự cố",
    firewall: "Tường lửa",
    rules_installed: "đã cài đặt quy tắc.",
    rules_missing: "chưa cài được quy tắc, thiết bị có thể không bị chặn như mong muốn; xem nhật ký.",
    logs_only: "chỉ ghi nhật ký, không chặn thiết bị nào.",
    grant_store: "Kho lưu quyền truy cập",
    grants_degraded: "suy giảm: không ghi được xuống đĩa, quyền truy cập chỉ còn trong bộ nhớ và sẽ mất nếu \
                      khởi động lại; xem nhật ký.",
    counts: "Số liệu hằng ngày",
    counts_degraded: "suy giảm: không ghi được xuống đĩa, số liệu hôm nay chỉ còn trong bộ nhớ; xem nhật ký.",
    healthy: "hoạt động tốt.",
    tls: "Chứng chỉ TLS",
    no_tls: "không dùng TLS.",
    campaign: "Chiến dịch",
    languages: "ngôn ngữ",
    default_language: "mặc định",
    on_air: "đang phát hôm nay",
    alert: "Thông báo khẩn cấp",
    no_alert: "không có.",
    alert_since: "hiển thị thay cho chiến dịch từ",
    gate_open: "Cổng đang mở: mọi thiết bị được truy cập Internet mà không cần bấm nút.",
    last_reload: "Lần nạp cấu hình và chiến dịch gần nhất",
    reload_applied: "thành công lúc",
    reload_refused: "bị từ chối lúc",
    reload_kept: "Vẫn đang dùng cấu hình và chiến dịch trước đó; xem nhật ký hoặc chạy portico check.",
    today: "Hôm nay",
    online_now: "Thiết bị đang trực tuyến",
    shown: "Thiết bị đã xem thông báo",
    connected: "Thiết bị đã kết nối",
    returning: "Thiết bị quay lại",
    views: "Lượt xem trang",
    by_hour: "Hôm nay theo giờ",
    last_days: "30 ngày qua",
    legend_shown: "Đã xem thông báo",
    legend_connected: "Đã kết nối",
    no_data: "Chưa có số liệu.",
    as_table: "Xem số liệu dạng bảng",
    hour: "Giờ",
    date: "Ngày",
    metrics: "Số liệu Prometheus",
};

/// A moment on the venue's clock, to the minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    pub day: Day,
    pub hour: u8,
    pub minute: u8,
}

impl LocalTime {
    pub fn at(zone: &Zone, t: SystemTime) -> LocalTime {
        let secs = unix_secs(t);
        // `local` answers with the start of the venue's next hour: the
        // minute is how far into this one `secs` is.
        let (day, hour, next_hour) = zone.local(secs);
        let minute = ((secs - (next_hour - 3600)) / 60).clamp(0, 59) as u8;
        LocalTime { day, hour, minute }
    }
}

/// The served TLS certificate's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The venue's day it expires on.
    pub expires: Day,
    /// Whole days from now to the expiry; negative once it has passed.
    pub days_left: i64,
}

impl Certificate {
    pub fn new(zone: &Zone, expires: SystemTime, now: SystemTime) -> Certificate {
        let left = unix_secs(expires) - unix_secs(now);
        Certificate { expires: zone.day(unix_secs(expires)), days_left: left.div_euclid(24 * 3600) }
    }
}

pub struct FirewallHealth<'a> {
    /// `nftables` or `none`.
    pub backend: &'a str,
    /// The `none` backend: nothing is gated.
    pub logs_only: bool,
    /// The rules are in the kernel (the last install did not fail).
    pub installed: bool,
    /// Times the rules were found changed and put right since start.
    pub repairs: u64,
    pub last_repair: Option<LocalTime>,
}

pub struct CampaignLanguage<'a> {
    pub tag: &'a str,
    /// The language's name in itself, from the campaign.
    pub name: &'a str,
    pub default: bool,
}

pub struct Health<'a> {
    pub firewall: FirewallHealth<'a>,
    pub grants_degraded: bool,
    pub counts_degraded: bool,
    /// `None` without `[tls]`.
    pub certificate: Option<Certificate>,
    pub campaign: &'a str,
    pub languages: Vec<CampaignLanguage<'a>>,
    /// The scheduled campaigns on the air today, when they are not just
    /// the default.
    pub on_air: Vec<&'a str>,
    /// The emergency notice in force: its title, whether it opened the
    /// gate, and since when.
    pub alert: Option<(&'a str, bool, LocalTime)>,
    /// Whether the last load (start-up's or a reload's) was applied, and when.
    pub last_reload: (bool, LocalTime),
}

/// Everything the page shows, read at one moment.
pub struct OperatorFacts<'a> {
    pub venue: &'a Venue,
    pub now: LocalTime,
    pub uptime: Duration,
    pub health: Health<'a>,
    pub online_now: u64,
    pub today: Day,
    pub today_total: Measures,
    /// Today's numbers by the venue's hour.
    pub by_hour: [Measures; 24],
    /// The [`DAYS`] days ending today, oldest first (see [`last_days`]).
    pub days: Vec<(Day, Measures)>,
}

/// The [`DAYS`] days ending `today`, oldest first: today's numbers, then
/// those of `past` (as `Counts::past` gives them, which leaves out a day
/// without a file); a day that is missing counts zero.
pub fn last_days(today: Day, today_total: Measures, past: &[(Day, Tally)]) -> Vec<(Day, Measures)> {
    (0..DAYS)
        .rev()
        .map(|back| {
            let day = today.minus_days(i64::from(back));
            let numbers = match back {
                0 => today_total,
                _ => past.iter().find(|(d, _)| *d == day).map(|(_, t)| t.total).unwrap_or_default(),
            };
            (day, numbers)
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    Warning,
    Problem,
}

impl Status {
    fn class(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }

    fn word(self, t: &Strings) -> &'static str {
        match self {
            Status::Ok => t.ok,
            Status::Warning => t.warning,
            Status::Problem => t.problem,
        }
    }
}

/// One line of the health list.
struct Check {
    status: Status,
    label: &'static str,
    detail: Markup,
}

fn checks(h: &Health, lang: Lang) -> Vec<Check> {
    let t = lang.strings();
    let fw = &h.firewall;
    let (status, state) = match (fw.installed, fw.logs_only) {
        (false, _) => (Status::Problem, t.rules_missing),
        (true, true) => (Status::Warning, t.logs_only),
        (true, false) => (Status::Ok, t.rules_installed),
    };
    let firewall = html! { (fw.backend) ": " (state) " " (lang.repairs(fw.repairs, fw.last_repair)) };
    let store = |degraded: bool, text: &'static str| {
        if degraded { (Status::Problem, html! { (text) }) } else { (Status::Ok, html! { (t.healthy) }) }
    };
    let (grants, grants_text) = store(h.grants_degraded, t.grants_degraded);
    let (counts, counts_text) = store(h.counts_degraded, t.counts_degraded);
    let (tls, tls_text) = match &h.certificate {
        None => (Status::Ok, t.no_tls.to_owned()),
        Some(c) if c.days_left < 0 => (Status::Problem, lang.certificate(c)),
        Some(c) if c.days_left < CERT_WARNING_DAYS => (Status::Warning, lang.certificate(c)),
        Some(c) => (Status::Ok, lang.certificate(c)),
    };
    let campaign = html! {
        (h.campaign) "; " (t.languages) ": "
        @for (i, l) in h.languages.iter().enumerate() {
            @if i > 0 { ", " }
            span lang=(l.tag) { (l.name) }
            " (" (l.tag) @if l.default { ", " (t.default_language) } ")"
        }
        @if !h.on_air.is_empty() { ". " (t.on_air) ": " (h.on_air.join(", ")) }
    };
    // On purpose, but never to be missed: a warning while it lasts.
    let alert = match h.alert {
        None => (Status::Ok, html! { (t.no_alert) }),
        Some((title, open, since)) => (
            Status::Warning,
            html! { "“" (title) "”, " (t.alert_since) " " (lang.time(since)) "." @if open { " " strong { (t.gate_open) } } },
        ),
    };
    let (applied, at) = h.last_reload;
    let reload = if applied {
        (Status::Ok, html! { (t.reload_applied) " " (lang.time(at)) "." })
    } else {
        (Status::Problem, html! { (t.reload_refused) " " (lang.time(at)) ". " (t.reload_kept) })
    };
    vec![
        Check { status, label: t.firewall, detail: firewall },
        Check { status: grants, label: t.grant_store, detail: grants_text },
        Check { status: counts, label: t.counts, detail: counts_text },
        Check { status: tls, label: t.tls, detail: html! { (tls_text) } },
        Check { status: alert.0, label: t.alert, detail: alert.1 },
        Check { status: Status::Ok, label: t.campaign, detail: campaign },
        Check { status: reload.0, label: t.last_reload, detail: reload.1 },
    ]
}

/// The whole page.
pub fn page(facts: &OperatorFacts, lang: Lang) -> Markup {
    let t = lang.strings();
    let other = lang.other().strings();
    let checks = checks(&facts.health, lang);
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (problems, warnings) = (count(Status::Problem), count(Status::Warning));
    let venue = facts.venue;
    let hours: Vec<Bar> = (0..24).map(|h| Bar::new(format!("{h:02}:00"), &facts.by_hour[h])).collect();
    let days: Vec<Bar> = facts.days.iter().map(|(day, m)| Bar::new(lang.short_date(*day), m)).collect();
    let day_rows: Vec<String> = facts.days.iter().map(|(day, _)| lang.date(*day)).collect();
    html! {
        (DOCTYPE)
        html lang=(t.tag) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t.page_title) " – " (venue.name) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    p.brand { "Portico · " (t.page_title) }
                    h1 { (venue.name) }
                    p { @if let Some(province) = &venue.province { (province) " · " } (lang.kind(venue.kind)) }
                    p.muted {
                        (t.as_of) " " (lang.time(facts.now)) " (" (t.venue_time) " " (venue.timezone.name()) "). "
                        (t.running_for) " " (lang.uptime(facts.uptime)) "."
                    }
                    nav aria-label=(t.language_label) {
                        a href={ "/?lang=" (other.tag) } lang=(other.tag) hreflang=(other.tag) { (other.name) }
                    }
                }
                main {
                    section aria-labelledby="health" {
                        h2 id="health" { (t.health) }
                        p.summary.(if problems > 0 { "problem" } else if warnings > 0 { "warning" } else { "ok" }) {
                            (lang.summary(problems, warnings))
                        }
                        ul.checks {
                            @for c in &checks {
                                li.(c.status.class()) {
                                    span.badge { (c.status.word(t)) } " " strong { (c.label) } ": " (c.detail)
                                }
                            }
                        }
                    }
                    section aria-labelledby="today" {
                        h2 id="today" { (t.today) ", " (lang.date(facts.today)) }
                        dl.figures {
                            div.now { dt { (t.online_now) } dd { (facts.online_now) } }
                            div { dt { (t.shown) } dd { (facts.today_total.shown) } }
                            div { dt { (t.connected) } dd { (facts.today_total.connected) } }
                            div { dt { (t.returning) } dd { (facts.today_total.returning) } }
                            div { dt { (t.views) } dd { (facts.today_total.views) } }
                        }
                    }
                    (Chart { id: "hours", title: t.by_hour, lang, bars: &hours, axis: Axis::Hours })
                    (Chart { id: "days", title: t.last_days, lang, bars: &days, axis: Axis::Days(&day_rows) })
                }
                footer { a href="/metrics" { (t.metrics) " (/metrics)" } }
            }
        }
    }
}

/// One bar of a chart: devices shown, with connected drawn over it.
struct Bar {
    label: String,
    shown: u64,
    connected: u64,
}

impl Bar {
    fn new(label: String, m: &Measures) -> Bar {
        Bar { label, shown: m.shown, connected: m.connected }
    }
}

/// The chart's drawing space (`viewBox`): about a phone's width, so that
/// its text is drawn near the size it is written in.
const WIDTH: f64 = 320.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 12.0;
const PLOT_HEIGHT: f64 = 120.0;
const BASELINE: f64 = TOP + PLOT_HEIGHT;
const HEIGHT: f64 = BASELINE + 24.0;

/// A coordinate, written with two decimals.
struct Px(f64);

impl Render for Px {
    fn render_to(&self, out: &mut String) {
        let _ = write!(out, "{:.2}", self.0);
    }
}

/// A chart's section: heading, legend, the SVG, its text alternative and
/// its numbers as a table.
struct Chart<'a> {
    id: &'a str,
    title: &'a str,
    lang: Lang,
    bars: &'a [Bar],
    axis: Axis<'a>,
}

/// What a chart's bars are.
enum Axis<'a> {
    /// The 24 hours of today: labelled every six from midnight.
    Hours,
    /// Days ending today: labelled every seven back from today; the table
    /// and the text alternative name each day in full (these strings).
    Days(&'a [String]),
}

impl Chart<'_> {
    /// Whether bar `i` has its label under the axis.
    fn labelled(&self, i: usize) -> bool {
        match self.axis {
            Axis::Hours => i.is_multiple_of(6),
            Axis::Days(_) => (self.bars.len() - 1 - i).is_multiple_of(7),
        }
    }

    /// Bar `i` as the table and the text alternative name it.
    fn name(&self, i: usize) -> &str {
        match self.axis {
            Axis::Hours => &self.bars[i].label,
            Axis::Days(names) => &names[i],
        }
    }

    fn max(&self) -> u64 {
        self.bars.iter().map(|b| b.shown.max(b.connected)).max().unwrap_or(0)
    }

    fn summary(&self) -> String {
        let t = self.lang.strings();
        let busiest = self.bars.iter().enumerate().max_by_key(|(i, b)| (b.shown, b.connected, std::cmp::Reverse(*i)));
        match busiest {
            Some((i, bar)) if self.max() > 0 => self.lang.busiest(matches!(self.axis, Axis::Hours), self.name(i), bar),
            _ => t.no_data.to_owned(),
        }
    }

    fn svg(&self) -> Markup {
        let t = self.lang.strings();
        let max = self.max();
        let slot = (WIDTH - LEFT - RIGHT) / self.bars.len().max(1) as f64;
        // Zero data draws no bar: the scale is never divided by zero.
        let height = |v: u64| if max == 0 { 0.0 } else { v as f64 * PLOT_HEIGHT / max as f64 };
        let id = self.id;
        html! {
            svg role="img" aria-labelledby={ (id) "-title " (id) "-summary" } viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } {
                title id={ (id) "-title" } { (self.title) }
                line.axis x1=(Px(LEFT)) y1=(Px(BASELINE)) x2=(Px(WIDTH - RIGHT)) y2=(Px(BASELINE)) {}
                text.scale x=(Px(LEFT - 4.0)) y=(Px(BASELINE)) text-anchor="end" { "0" }
                @if max > 0 {
                    line.grid x1=(Px(LEFT)) y1=(Px(TOP)) x2=(Px(WIDTH - RIGHT)) y2=(Px(TOP)) {}
                    text.scale x=(Px(LEFT - 4.0)) y=(Px(TOP + 4.0)) text-anchor="end" { (max) }
                }
                @for (i, bar) in self.bars.iter().enumerate() {
                    @let x = LEFT + i as f64 * slot;
                    rect.shown x=(Px(x + slot * 0.1)) y=(Px(BASELINE - height(bar.shown))) width=(Px(slot * 0.8)) height=(Px(height(bar.shown))) {}
                    rect.connected x=(Px(x + slot * 0.3)) y=(Px(BASELINE - height(bar.connected))) width=(Px(slot * 0.4)) height=(Px(height(bar.connected))) {}
                    @if self.labelled(i) {
                        text.label x=(Px(x + slot / 2.0)) y=(Px(BASELINE + 16.0)) text-anchor="middle" { (bar.label) }
                    }
                }
                @if max == 0 {
                    text.empty x=(Px(LEFT + (WIDTH - LEFT - RIGHT) / 2.0)) y=(Px(TOP + PLOT_HEIGHT / 2.0)) text-anchor="middle" { (t.no_data) }
                }
            }
        }
    }
}

impl Render for Chart<'_> {
    fn render(&self) -> Markup {
        let t = self.lang.strings();
        let first_column = match self.axis {
            Axis::Hours => t.hour,
            Axis::Days(_) => t.date,
        };
        html! {
            section.chart aria-labelledby=(self.id) {
                h2 id=(self.id) { (self.title) }
                p.legend {
                    span.key { span.swatch.shown {} (t.legend_shown) }
                    " "
                    span.key { span.swatch.connected {} (t.legend_connected) }
                }
                (self.svg())
                p id={ (self.id) "-summary" } { (self.summary()) }
                details {
                    summary { (t.as_table) }
                    table {
                        thead { tr { th scope="col" { (first_column) } th scope="col" { (t.legend_shown) } th scope="col" { (t.legend_connected) } } }
                        tbody {
                            @for (i, bar) in self.bars.iter().enumerate() {
                                tr {
                                    th scope="row" { (self.name(i)) }
                                    td { (bar.shown) }
                                    td { (bar.connected) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// System fonts; text at least 4.5:1 on its background, the bars and
/// the status borders at least 3:1.
const CSS: &str = "\
:root{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;line-height:1.45;color:#1a1a1a;background:#fff}
body{margin:0 auto;max-width:44rem;padding:0 1rem 2rem;overflow-wrap:anywhere}
header{border-bottom:1px solid #767676;padding:.5rem 0}
h1{font-size:1.45rem;margin:.1rem 0}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
p{margin:.3rem 0}
.brand,.muted,dt,.legend{color:#555}
a{color:#003f8a}
nav a,footer a{display:inline-block;min-height:44px;min-width:44px;line-height:44px}
summary{min-height:44px;line-height:44px;cursor:pointer}
footer{margin-top:2rem;border-top:1px solid #767676}
.summary{font-weight:600}
.checks{list-style:none;padding:0;margin:0}
.checks li{border:1px solid #767676;border-left-width:6px;border-radius:4px;padding:.4rem .6rem;margin:.4rem 0}
.checks li.ok{border-left-color:#1b6e3a}
.checks li.warning{border-left-color:#8a5300}
.checks li.problem{border-left-color:#b00020}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff;font-weight:600;font-size:.875rem}
.ok .badge{background:#1b6e3a}
.warning .badge{background:#8a5300}
.problem .badge{background:#b00020}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.5rem;margin:0}
.figures div{border:1px solid #767676;border-radius:4px;padding:.4rem .6rem}
.figures .now{border-width:2px;border-color:#003f8a}
dt{font-size:.875rem}
dd{margin:0;font-size:1.6rem;font-weight:700}
svg{display:block;width:100%;max-width:28rem;height:auto}
svg text{font-size:12px;fill:#333}
svg .empty{font-size:14px}
svg .axis{stroke:#333}
svg .grid{stroke:#767676;stroke-dasharray:3 3}
.shown{fill:#5f93d3;background:#5f93d3}
.connected{fill:#0b3d91;background:#0b3d91}
.key{white-space:nowrap;margin-right:1rem}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.15rem .4rem;border-bottom:1px solid #ccc;text-align:right}
th:first-child{text-align:left}
";

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        s.parse().unwrap()
    }

    fn at(s: &str) -> LocalTime {
        LocalTime { day: day(s), hour: 9, minute: 5 }
    }

    fn venue() -> Venue {
        Venue {
            name: "Ga Buôn Ma Thuột".into(),
            kind: VenueKind::Station,
            province: Some("Đắk Lắk".into()),
            timezone: Zone::default(),
        }
    }

    /// A healthy venue with nothing counted yet.
    fn facts(venue: &Venue) -> OperatorFacts<'_> {
        let today = day("2026-03-10");
        OperatorFacts {
            venue,
            now: at("2026-03-10"),
            uptime: Duration::from_secs(3 * 3600 + 120),
            health: Health {
                firewall: FirewallHealth {
                    backend: "nftables",
                    logs_only: false,
                    installed: true,
                    repairs: 0,
                    last_repair: None,
                },
                grants_degraded: false,
                counts_degraded: false,
                certificate: Some(Certificate { expires: day("2026-06-01"), days_left: 83 }),
                campaign: "bluezone",
                languages: vec![
                    CampaignLanguage { tag: "vi", name: "Tiếng Việt", default: true },
                    CampaignLanguage { tag: "en", name: "English", default: false },
                ],
                on_air: Vec::new(),
                alert: None,
                last_reload: (true, at("2026-03-10")),
            },
            online_now: 0,
            today,
            today_total: Measures::default(),
            by_hour: [Measures::default(); 24],
            days: last_days(today, Measures::default(), &[]),
        }
    }

    fn shown(n: u64, connected: u64) -> Measures {
        Measures { shown: n, connected, ..Measures::default() }
    }

    /// The `height` of every `<rect class="{class}">` in the chart `id`.
    fn heights(html: &str, id: &str, class: &str) -> Vec<f64> {
        let start = html.find(&format!("aria-labelledby=\"{id}-title")).expect("the chart");
        let svg = &html[start..start + html[start..].find("</svg>").unwrap()];
        svg.split("<rect")
            .skip(1)
            .filter(|r| r.contains(&format!("class=\"{class}\"")))
            .map(|r| {
                let h = r.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    /// Every coordinate and size drawn in the page's charts.
    fn coordinates(html: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for svg in html.split("<svg").skip(1) {
            let svg = &svg[..svg.find("</svg>").unwrap()];
            for attr in [" x=\"", " y=\"", " x1=\"", " y1=\"", " x2=\"", " y2=\"", " width=\"", " height=\""] {
                for value in svg.split(attr).skip(1) {
                    out.push(value[..value.find('"').unwrap()].parse().unwrap());
                }
            }
        }
        out
    }

    /// The text of each health line marked `status`.
    fn lines(html: &str, status: &str) -> Vec<String> {
        let open = format!("<li class=\"{status}\">");
        html.split(&open).skip(1).map(|li| li[..li.find("</li>").unwrap()].to_owned()).collect()
    }

    #[test]
    fn the_language_is_asked_for_or_english() {
        assert_eq!(Lang::choose(None, Some("vi-VN,vi;q=0.9")), Lang::Vi);
        assert_eq!(Lang::choose(None, Some("en;q=0.1, vi;q=0.5")), Lang::Vi);
        assert_eq!(Lang::choose(None, Some("vi;q=0.3, en")), Lang::En);
        assert_eq!(Lang::choose(None, Some("fr")), Lang::En);
        assert_eq!(Lang::choose(None, Some("fr-FR, de;q=0.8")), Lang::En, "a language the page lacks");
        assert_eq!(Lang::choose(None, None), Lang::En);
        assert_eq!(Lang::choose(Some("lang=vi"), Some("en")), Lang::Vi, "?lang= overrides the header");
        assert_eq!(Lang::choose(Some("x=1&lang=en"), Some("vi-VN")), Lang::En);
        assert_eq!(Lang::choose(Some("lang=xx"), Some("vi")), Lang::Vi, "an unknown ?lang= is ignored");
    }

    #[test]
    fn the_page_is_in_the_chosen_language_and_links_to_the_other() {
        let venue = venue();
        let vi = page(&facts(&venue), Lang::Vi).into_string();
        assert!(vi.contains("<html lang=\"vi\">"), "{vi}");
        assert!(vi.contains("Thiết bị đang trực tuyến") && vi.contains("Tường lửa") && vi.contains("30 ngày qua"));
        assert!(vi.contains("href=\"/?lang=en\" lang=\"en\" hreflang=\"en\">English</a>"), "{vi}");
        assert!(vi.contains("10/03/2026") && vi.contains("Nhà ga"));
        let en = page(&facts(&venue), Lang::En).into_string();
        assert!(en.contains("<html lang=\"en\">"));
        assert!(en.contains("Devices online now") && en.contains("Today by hour") && en.contains("10 Mar 2026"));
        assert!(en.contains("href=\"/?lang=vi\" lang=\"vi\" hreflang=\"vi\">Tiếng Việt</a>"), "{en}");
        for html in [&vi, &en] {
            assert!(html.contains("Ga Buôn Ma Thuột") && html.contains("Đắk Lắk"));
            assert!(html.contains("href=\"/metrics\""));
            assert!(html.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""));
            assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("http"), "{html}");
        }
    }

    #[test]
    fn bars_are_as_tall_as_their_numbers() {
        let venue = venue();
        let mut f = facts(&venue);
        f.by_hour[8] = shown(4, 1);
        f.by_hour[9] = shown(8, 2);
        f.by_hour[17] = shown(2, 8);
        f.days[29].1 = shown(10, 5);
        f.days[22].1 = shown(5, 0);
        f.days[15].1 = shown(1, 0);
        let html = page(&f, Lang::En).into_string();

        let hours = heights(&html, "hours", "shown");
        assert_eq!(hours.len(), 24);
        let tallest = hours[9];
        assert!((tallest - PLOT_HEIGHT).abs() < 0.01, "the largest number fills the chart: {hours:?}");
        assert!((hours[8] - tallest / 2.0).abs() < 0.01, "{hours:?}");
        assert!((hours[17] - tallest / 4.0).abs() < 0.01, "{hours:?}");
        assert!(hours.iter().enumerate().all(|(h, v)| [8, 9, 17].contains(&h) || *v == 0.0), "{hours:?}");
        let connected = heights(&html, "hours", "connected");
        assert!((connected[17] - tallest).abs() < 0.01, "the scale is the larger of the two series: {connected:?}");
        assert!((connected[9] - tallest / 4.0).abs() < 0.01, "{connected:?}");
        assert!(html.contains(">8</text>"), "the maximum is labelled");

        let days = heights(&html, "days", "shown");
        assert_eq!(days.len(), DAYS as usize);
        assert!((days[29] - PLOT_HEIGHT).abs() < 0.01 && (days[22] - PLOT_HEIGHT / 2.0).abs() < 0.01, "{days:?}");
        assert!(html.contains("Busiest hour: 09:00, 8 devices shown the notice and 2 connected."), "{html}");
        assert!(html.contains("Busiest day: 10 Mar 2026, 10 devices shown"), "{html}");
        assert!((days[15] - PLOT_HEIGHT / 10.0).abs() < 0.01, "{days:?}");
        let one = page(&OperatorFacts { by_hour: [shown(1, 1); 24], ..facts(&venue) }, Lang::En).into_string();
        assert!(one.contains("Busiest hour: 00:00, 1 device shown the notice and 1 connected."), "{one}");
        // Axis labels: every six hours, and every seven days back from today.
        for label in ["00:00", "06:00", "12:00", "18:00"] {
            assert!(html.contains(&format!("text-anchor=\"middle\">{label}</text>")), "{label}");
        }
        assert!(!html.contains("text-anchor=\"middle\">09:00</text>"));
        for label in ["10 Mar", "3 Mar", "24 Feb", "17 Feb", "10 Feb"] {
            assert!(html.contains(&format!("text-anchor=\"middle\">{label}</text>")), "{label}");
        }
    }

    #[test]
    fn nothing_counted_draws_empty_charts_that_say_so() {
        let venue = venue();
        for lang in [Lang::En, Lang::Vi] {
            let html = page(&facts(&venue), lang).into_string();
            let drawn = coordinates(&html);
            assert!(drawn.len() > 100 && drawn.iter().all(|v| v.is_finite()), "{drawn:?}");
            for id in ["hours", "days"] {
                let bars = heights(&html, id, "shown");
                assert!(!bars.is_empty() && bars.iter().all(|h| *h == 0.0), "{id}: {bars:?}");
            }
            let note = lang.strings().no_data;
            assert_eq!(html.matches(note).count(), 4, "drawn in each chart and said below it");
        }
    }

    #[test]
    fn every_problem_is_said_in_words() {
        let venue = venue();
        let healthy = page(&facts(&venue), Lang::En).into_string();
        assert!(healthy.contains("Everything is working."));
        assert!(lines(&healthy, "problem").is_empty() && lines(&healthy, "warning").is_empty(), "{healthy}");

        let mut f = facts(&venue);
        f.health.firewall.installed = false;
        f.health.firewall.repairs = 3;
        f.health.firewall.last_repair = Some(LocalTime { day: day("2026-03-10"), hour: 14, minute: 7 });
        f.health.grants_degraded = true;
        f.health.certificate = Some(Certificate { expires: day("2026-03-13"), days_left: 3 });
        f.health.last_reload = (false, at("2026-03-09"));
        let html = page(&f, Lang::En).into_string();
        assert!(html.contains("3 problems, 1 warning: see below."), "{html}");
        let problems = lines(&html, "problem");
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems.iter().all(|p| p.starts_with("<span class=\"badge\">Problem</span>")), "{problems:#?}");
        assert!(problems[0].contains("Firewall") && problems[0].contains("rules not installed"));
        assert!(problems[0].contains("Repaired 3 times since start, last at 10 Mar 2026, 14:07."));
        assert!(problems[1].contains("Grant store") && problems[1].contains("degraded"));
        assert!(problems[2].contains("refused at 9 Mar 2026, 09:05"), "{}", problems[2]);
        let warnings = lines(&html, "warning");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("Warning") && warnings[0].contains("3 days left"), "{}", warnings[0]);

        f.health.counts_degraded = true;
        f.health.certificate = Some(Certificate { expires: day("2026-03-01"), days_left: -9 });
        let vi = page(&f, Lang::Vi).into_string();
        let problems = lines(&vi, "problem");
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems.iter().all(|p| p.contains("Sự cố")));
        assert!(problems.iter().any(|p| p.contains("Số liệu hằng ngày") && p.contains("suy giảm")));
        assert!(problems.iter().any(|p| p.contains("đã hết hạn ngày 01/03/2026")));
        assert!(vi.contains("Có 5 sự cố: xem bên dưới."), "{vi}");
    }

    #[test]
    fn an_alert_and_the_campaigns_on_the_air_are_shown() {
        let venue = venue();
        let mut f = facts(&venue);
        f.health.on_air = vec!["PC-Covid", "Tiêm chủng"];
        f.health.alert = Some(("Typhoon warning", true, LocalTime { day: day("2026-03-10"), hour: 6, minute: 30 }));
        let html = page(&f, Lang::En).into_string();
        let warnings = lines(&html, "warning");
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(warnings[0].contains("Emergency notice") && warnings[0].contains("“Typhoon warning”"));
        assert!(warnings[0].contains("since 10 Mar 2026, 06:30") && warnings[0].contains("The gate is open"));
        assert!(html.contains("on the air today: PC-Covid, Tiêm chủng"), "{html}");
        f.health.alert = None;
        let vi = page(&f, Lang::Vi).into_string();
        assert!(lines(&vi, "warning").is_empty() && vi.contains("Thông báo khẩn cấp"));
    }

    #[test]
    fn the_none_backend_and_no_tls_are_said_plainly() {
        let venue = venue();
        let mut f = facts(&venue);
        f.health.firewall =
            FirewallHealth { backend: "none", logs_only: true, installed: true, repairs: 0, last_repair: None };
        f.health.certificate = None;
        let html = page(&f, Lang::En).into_string();
        let warnings = lines(&html, "warning");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("none: logs only") && warnings[0].contains("Never repaired since start."));
        assert!(lines(&html, "ok").iter().any(|l| l.contains("TLS certificate") && l.contains("no TLS.")));
    }

    #[test]
    fn missing_days_count_zero_and_today_is_last() {
        let today = day("2026-03-10");
        let tally = Tally { total: shown(7, 3), ..Tally::default() };
        let past = vec![(day("2026-02-10"), tally.clone()), (day("2026-03-08"), tally.clone())];
        let days = last_days(today, shown(1, 1), &past);
        assert_eq!(days.len(), DAYS as usize);
        assert_eq!(days[0].0, day("2026-02-09"));
        assert_eq!(days[29], (today, shown(1, 1)));
        assert_eq!(days[27], (day("2026-03-08"), shown(7, 3)));
        assert_eq!(days[1], (day("2026-02-10"), shown(7, 3)));
        assert_eq!(days.iter().filter(|(_, m)| *m == Measures::default()).count(), 27);
    }

    #[test]
    fn times_are_the_venues_to_the_minute() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_384_400 + 3 * 60 + 59);
        // 2026-03-01T17:03:59Z is 00:03 on 2 March in Ho Chi Minh City.
        let local = LocalTime::at(&Zone::default(), t);
        assert_eq!((local.day, local.hour, local.minute), (day("2026-03-02"), 0, 3));
        let cert = Certificate::new(&Zone::default(), t + Duration::from_secs(3 * 86_400 + 60), t);
        assert_eq!(cert, Certificate { expires: day("2026-03-05"), days_left: 3 });
        let expired = Certificate::new(&Zone::default(), t - Duration::from_secs(60), t);
        assert_eq!(expired.days_left, -1, "a certificate that has expired has less than zero days");
        assert_eq!(Lang::En.uptime(Duration::from_secs(90_061)), "1 d 1 h 1 min");
        assert_eq!(Lang::Vi.uptime(Duration::from_secs(30)), "0 phút");
    }
}
