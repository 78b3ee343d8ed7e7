//! The config file as written, and its validation into [`Config`].
//!
//! Raw values stay strings so that one bad value is reported with its key
//! instead of failing the whole parse; `deny_unknown_fields` turns a typo
//! (`sesion = "12h"`) into an error instead of a silently ignored line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::Checker;
use super::limits::RawLimits;
use super::{
    Admin, Backend, Config, FirewallSection, PortalSection, Problem, PublicUrl, Rate, ScheduledCampaign, State, Tls,
    Venue, VenueKind, WalledGarden,
};
use crate::campaign::{BundleKey, BundleSource, CampaignSource};
use crate::trusted::{self, TrustedDevice};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    venue: RawVenue,
    portal: RawPortal,
    tls: Option<RawTls>,
    #[serde(default)]
    firewall: RawFirewall,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    walled_garden: RawGarden,
    #[serde(default)]
    trusted: Vec<RawTrusted>,
    #[serde(default)]
    campaigns: Vec<RawCampaign>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    source: String,
    from: Option<String>,
    until: Option<String>,
    #[serde(default)]
    kinds: Vec<String>,
    weight: Option<i64>,
    key: Option<String>,
    ca: Option<PathBuf>,
    poll: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGarden {
    #[serde(default)]
    hosts: Vec<String>,
    ports: Option<Vec<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrusted {
    mac: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVenue {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    province: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortal {
    #[serde(default)]
    listen: Option<String>,
    public_url: String,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
    campaign_key: Option<String>,
    campaign_ca: Option<PathBuf>,
    campaign_poll: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    listen: String,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFirewall {
    backend: Option<String>,
    interface: Option<OneOrMany>,
    table: Option<String>,
    device_rate: Option<String>,
    device_upload_rate: Option<String>,
    #[serde(default)]
    limit_trusted: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: Option<PathBuf>,
    retention: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<String>,
    token_file: Option<PathBuf>,
}

pub(super) fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| vec![locate(text, &e)])?;
    let mut c = Checker::default();

    let venue = validate_venue(&mut c, raw.venue);

    let listen = c.addr("portal.listen", raw.portal.listen.as_deref(), "0.0.0.0:8080");
    let public_url = PublicUrl::parse(&raw.portal.public_url).unwrap_or_else(|e| {
        c.bad("portal.public_url", format!("{:?} {e}", raw.portal.public_url));
        PublicUrl::parse("http://invalid/").expect("placeholder URL parses")
    });
    // At most 30 days: the reminder is meant to come back.
    let session = c.duration(
        "portal.session",
        raw.portal.session.as_deref(),
        Duration::from_secs(12 * 3_600),
        Duration::from_secs(1)..=Duration::from_secs(30 * 86_400),
    );
    let keys = SourceKeys {
        source: "portal.campaign",
        key: "portal.campaign_key",
        ca: "portal.campaign_ca",
        poll: "portal.campaign_poll",
    };
    let shorthand = raw.portal.campaign.as_deref().unwrap_or("bluezone");
    let (key, ca, poll) = (raw.portal.campaign_key, raw.portal.campaign_ca, raw.portal.campaign_poll);
    let campaign = campaign_source(&mut c, &keys, shorthand, BundleKeys { key, ca, poll }, base);
    let portal = PortalSection { listen, public_url, session, campaign };
    let campaigns = validate_campaigns(&mut c, raw.campaigns, base);

    let tls = raw.tls.map(|t| Tls {
        listen: c.addr("tls.listen", Some(&t.listen), "0.0.0.0:8443"),
        cert: base.join(t.cert),
        key: base.join(t.key),
    });

    let firewall = validate_firewall(&mut c, raw.firewall);
    let state = validate_state(&mut c, raw.state, base);
    let limits = super::limits::validate(raw.limits, &mut c);
    let admin = validate_admin(&mut c, raw.admin, base);
    let walled_garden = validate_garden(&mut c, raw.walled_garden, &firewall);
    let trusted = validate_trusted(&mut c, raw.trusted);

    // Every phone is sent to `public_url`: an https one needs something
    // that speaks TLS there, Portico's own listener or a proxy in front.
    if portal.public_url.https && tls.is_none() && limits.trusted_proxies.is_empty() {
        c.bad(
            "portal.public_url",
            format!(
                "{} is https, but no listener serves https: add a [tls] section (listen, cert, key), \
                 list the TLS proxy in front of Portico in limits.trusted_proxies, or use an http:// URL",
                portal.public_url.url
            ),
        );
    }

    let mut listeners = vec![("portal.listen", portal.listen), ("admin.listen", admin.listen)];
    if let Some(t) = &tls {
        listeners.push(("tls.listen", t.listen));
    }
    for (i, (key, addr)) in listeners.iter().enumerate() {
        if addr.port() != 0 && listeners[..i].iter().any(|(_, other)| other == addr) {
            c.bad(key, format!("{addr} is already used by another listener"));
        }
    }

    if c.problems.is_empty() {
        Ok(Config { venue, portal, tls, firewall, state, admin, limits, walled_garden, trusted, campaigns })
    } else {
        Err(c.problems)
    }
}

/// The keys a campaign source is read from, for the problems.
struct SourceKeys<'a> {
    source: &'a str,
    key: &'a str,
    ca: &'a str,
    poll: &'a str,
}

/// What only a bundle source has, as written.
struct BundleKeys {
    key: Option<String>,
    ca: Option<PathBuf>,
    poll: Option<String>,
}

/// How often a bundle is asked for again unless `poll` says otherwise.
const DEFAULT_POLL: Duration = Duration::from_secs(15 * 60);

/// A built-in name, a folder (relative to the config), or an https bundle
/// URL with its key (and optionally extra roots and its poll interval).
fn campaign_source(
    c: &mut Checker,
    keys: &SourceKeys,
    source: &str,
    bundle: BundleKeys,
    base: &Path,
) -> CampaignSource {
    let BundleKeys { key, ca, poll } = bundle;
    let source = source.trim();
    let is_url = source.contains("://");
    if !is_url {
        for (name, given) in [(keys.key, key.is_some()), (keys.ca, ca.is_some()), (keys.poll, poll.is_some())] {
            if given {
                c.bad(name, "is only for a campaign bundle at an https:// URL");
            }
        }
    }
    match source {
        "" => {
            c.bad(keys.source, "is empty; use \"bluezone\", a path to a campaign folder, or an https:// bundle URL");
            CampaignSource::Builtin(String::new())
        }
        url if is_url => {
            if !url.starts_with("https://") || url.len() <= "https://".len() || url.contains(char::is_whitespace) {
                c.bad(keys.source, format!("{url:?}: a campaign bundle is fetched over https:// only"));
            }
            let key = match key.as_deref().map(str::trim) {
                Some(k) if !k.is_empty() => match k.parse::<BundleKey>() {
                    Ok(key) => Some(key),
                    Err(e) => {
                        c.bad(keys.key, e);
                        None
                    }
                },
                _ => {
                    c.bad(
                        keys.key,
                        format!(
                            "is required for the bundle {url:?}: the minisign public key that signs it \
                             (the RW… line of minisign.pub)"
                        ),
                    );
                    None
                }
            };
            let ca = ca.map(|p| base.join(p));
            let poll = c.duration(
                keys.poll,
                poll.as_deref(),
                DEFAULT_POLL,
                Duration::from_secs(1)..=Duration::from_secs(7 * 86_400),
            );
            // Without a key the config is refused (the problem is noted
            // above); what stands in for the source is never used.
            key.map_or(CampaignSource::Builtin(String::new()), |key| {
                CampaignSource::Bundle(BundleSource { url: url.to_owned(), key, ca, poll })
            })
        }
        name if !name.contains(['/', '.']) => CampaignSource::Builtin(name.to_owned()),
        path => CampaignSource::Folder(base.join(path)),
    }
}

fn validate_campaigns(c: &mut Checker, raw: Vec<RawCampaign>, base: &Path) -> Vec<ScheduledCampaign> {
    let mut campaigns = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        // Counted from 1, as an operator counts the entries in the file.
        let key = |k: &str| format!("campaigns[{}].{k}", i + 1);
        let (source_key, key_key, ca_key, poll_key) = (key("source"), key("key"), key("ca"), key("poll"));
        let keys = SourceKeys { source: &source_key, key: &key_key, ca: &ca_key, poll: &poll_key };
        let bundle = BundleKeys { key: entry.key, ca: entry.ca, poll: entry.poll };
        let source = campaign_source(c, &keys, &entry.source, bundle, base);
        let mut day = |k: &str, value: Option<String>| {
            value.and_then(|v| match v.parse::<crate::counts::Day>() {
                Ok(day) => Some(day),
                Err(e) => {
                    c.bad(&key(k), e);
                    None
                }
            })
        };
        let (from, until) = (day("from", entry.from), day("until", entry.until));
        if let (Some(f), Some(u)) = (from, until)
            && u < f
        {
            c.bad(&key("until"), format!("{u} is before from = {f}"));
        }
        let mut kinds = Vec::new();
        for kind in &entry.kinds {
            match VenueKind::ALL.iter().find(|(s, _)| s == kind) {
                Some((_, k)) if !kinds.contains(k) => kinds.push(*k),
                Some(_) => c.bad(&key("kinds"), format!("{kind:?} is listed twice")),
                None => {
                    let names: Vec<&str> = VenueKind::ALL.iter().map(|(s, _)| *s).collect();
                    c.bad(&key("kinds"), format!("{kind:?} is not one of {}", names.join(" | ")));
                }
            }
        }
        let weight = match entry.weight {
            None => 1,
            Some(w @ 1..=1000) => w as u32,
            Some(w) => {
                c.bad(&key("weight"), format!("{w} is not from 1 to 1000"));
                1
            }
        };
        campaigns.push(ScheduledCampaign { source, from, until, kinds, weight });
    }
    campaigns
}

fn validate_admin(c: &mut Checker, raw: RawAdmin, base: &Path) -> Admin {
    let before = c.problems.len();
    let listen = c.addr("admin.listen", raw.listen.as_deref(), "127.0.0.1:9090");
    let listen_parsed = c.problems.len() == before;
    let token_file = match raw.token_file {
        Some(path) if path.as_os_str().is_empty() => {
            c.bad("admin.token_file", "is empty; give the path of a file holding the token");
            None
        }
        // The file itself is read where the token is used (see `AdminToken`).
        path => path.map(|p| base.join(p)),
    };
    let admin = Admin { listen, token_file };
    // A bad address is reported already, as itself.
    if let Some(problem) = admin.open_door().filter(|_| listen_parsed) {
        c.problems.push(problem);
    }
    admin
}

fn validate_state(c: &mut Checker, raw: RawState, base: &Path) -> State {
    let dir = raw.dir.map_or_else(|| PathBuf::from("/var/lib/portico"), |d| base.join(d));
    // Whole days: the counts are kept one file per day.
    const DAY: Duration = Duration::from_secs(86_400);
    let default = State::DEFAULT_RETENTION_DAYS;
    let retention = c.duration("state.retention", raw.retention.as_deref(), DAY * default, DAY..=DAY * 36_500);
    let retention_days = if retention.as_secs().is_multiple_of(DAY.as_secs()) {
        (retention.as_secs() / DAY.as_secs()) as u32
    } else {
        c.bad("state.retention", "must be whole days (like \"400d\")");
        default
    };
    State { dir, retention_days }
}

fn validate_venue(c: &mut Checker, raw: RawVenue) -> Venue {
    let name = raw.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        c.bad("venue.name", "must be 1 to 100 characters");
    }
    let kind_text = raw.kind.as_deref().unwrap_or("other");
    let kind = VenueKind::ALL.iter().find(|(s, _)| *s == kind_text).map(|(_, k)| *k).unwrap_or_else(|| {
        let names: Vec<&str> = VenueKind::ALL.iter().map(|(s, _)| *s).collect();
        c.bad("venue.kind", format!("{kind_text:?} is not one of {}", names.join(" | ")));
        VenueKind::Other
    });
    let province = raw.province.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
    let timezone = match raw.timezone.as_deref().map(crate::counts::Zone::named) {
        None => crate::counts::Zone::default(),
        Some(Ok(zone)) => zone,
        Some(Err(e)) => {
            c.bad("venue.timezone", e);
            crate::counts::Zone::default()
        }
    };
    Venue { name, kind, province, timezone }
}

fn validate_firewall(c: &mut Checker, raw: RawFirewall) -> FirewallSection {
    let backend = match raw.backend.as_deref().unwrap_or("nftables") {
        "nftables" => Backend::Nftables,
        "none" => Backend::None,
        other => {
            c.bad("firewall.backend", format!("{other:?} is not one of nftables | none"));
            Backend::None
        }
    };
    let interfaces = match raw.interface {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    };
    for name in &interfaces {
        // The kernel's limit is 15 bytes; the character set keeps names safe
        // to place in an nft ruleset.
        let ok = !name.is_empty()
            && name.len() <= 15
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
        if !ok {
            c.bad("firewall.interface", format!("{name:?} is not an interface name (1-15 of a-z 0-9 - _ . @)"));
        }
    }
    if backend == Backend::Nftables && interfaces.is_empty() {
        c.bad(
            "firewall.interface",
            "is required with backend = \"nftables\" (the client-facing interface, e.g. \"br-lan\")",
        );
    }
    let table = raw.table.unwrap_or_else(|| "portico".into());
    if table.is_empty() || table.len() > 32 || !table.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        c.bad("firewall.table", format!("{table:?} is not a table name (1-32 of a-z A-Z 0-9 _)"));
    }
    let rate = |c: &mut Checker, key: &str, value: Option<String>| {
        value.and_then(|v| Rate::parse(&v).map_err(|e| c.bad(key, e)).ok())
    };
    let device_rate = rate(c, "firewall.device_rate", raw.device_rate);
    let device_upload_rate = rate(c, "firewall.device_upload_rate", raw.device_upload_rate);
    if backend == Backend::None && (device_rate.is_some() || device_upload_rate.is_some()) {
        c.bad("firewall.device_rate", "needs backend = \"nftables\": the rate is enforced in the kernel");
    }
    FirewallSection { backend, interfaces, table, device_rate, device_upload_rate, limit_trusted: raw.limit_trusted }
}

fn validate_garden(c: &mut Checker, raw: RawGarden, firewall: &FirewallSection) -> WalledGarden {
    let mut hosts: Vec<String> = Vec::new();
    for host in raw.hosts {
        let host = host.trim().trim_end_matches('.').to_owned();
        match crate::garden::refusal(&host) {
            Some(why) => c.bad("walled_garden.hosts", why),
            None if hosts.contains(&host) => c.bad("walled_garden.hosts", format!("{host:?} is listed twice")),
            None => hosts.push(host),
        }
    }
    let ports = raw.ports.unwrap_or_else(|| vec![443]);
    let ports: Vec<u16> = ports
        .into_iter()
        .filter_map(|p| match u16::try_from(p) {
            Ok(port @ 1..) => Some(port),
            _ => {
                c.bad("walled_garden.ports", format!("{p} is not a port (1 to 65535)"));
                None
            }
        })
        .collect();
    if !hosts.is_empty() && ports.is_empty() {
        c.bad("walled_garden.ports", "is empty: the garden's hosts could be resolved but not reached");
    }
    if !hosts.is_empty() && firewall.backend == Backend::None {
        c.bad("walled_garden.hosts", "needs backend = \"nftables\": without a gate there is no garden to open");
    }
    WalledGarden { hosts, ports }
}

fn validate_trusted(c: &mut Checker, raw: Vec<RawTrusted>) -> Vec<TrustedDevice> {
    let mut devices: Vec<TrustedDevice> = Vec::new();
    for entry in raw {
        let Ok(mac) = entry.mac.parse() else {
            c.bad("trusted.mac", format!("{:?} is not a MAC address (like \"02:11:22:33:44:55\")", entry.mac));
            continue;
        };
        let name = match trusted::check_name(&entry.name) {
            Ok(name) => name,
            Err(e) => {
                c.bad("trusted.name", format!("{:?} {e}", entry.name));
                continue;
            }
        };
        if devices.iter().any(|d| d.mac == mac) {
            c.bad("trusted.mac", format!("{mac} is listed twice"));
            continue;
        }
        devices.push(TrustedDevice { mac, name });
    }
    devices
}

/// Turns a TOML/serde error into a problem naming the key and line: the
/// parser gives a byte span; the key is read from that line, and its table
/// from the nearest `[header]` above it.
fn locate(text: &str, e: &toml::de::Error) -> Problem {
    let message = e.message().trim().to_owned();
    let Some(span) = e.span() else {
        return Problem { key: "file".into(), line: None, message };
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let line = lines.get(line_no - 1).copied().unwrap_or("").trim();
    let table = lines[..(line_no - 1).min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.split(']').next()))
        .map(str::trim);
    // A missing field is reported on its table's header; name the field.
    let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
    let header = line.strip_prefix('[').and_then(|l| l.split(']').next()).map(str::trim);
    let key = match (header, missing) {
        (Some(h), Some(field)) => format!("{h}.{field}"),
        (Some(h), None) => h.to_owned(),
        (None, Some(field)) => field.to_owned(),
        (None, None) => {
            let name = line.split('=').next().unwrap_or("").trim();
            match table {
                Some(t) if !name.is_empty() => format!("{t}.{name}"),
                _ if !name.is_empty() => name.to_owned(),
                _ => "file".to_owned(),
            }
        }
    };
    Problem { key, line: Some(line_no), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_admin(admin: &str) -> Result<Config, Vec<Problem>> {
        let text = format!(
            "[venue]\nname = \"Ga\"\n[portal]\npublic_url = \"http://10.0.0.1:8080/\"\n\
             [firewall]\nbackend = \"none\"\n[admin]\n{admin}\n"
        );
        parse(&text, Path::new("/etc/portico"))
    }

    /// Issue 12: a control listener other machines can reach has a token.
    #[test]
    fn an_admin_listener_off_loopback_needs_a_token_file_naming_both_keys() {
        for listen in ["0.0.0.0:9090", "[::]:9090", "192.168.1.1:9090", "[fd00::1]:9090"] {
            let problems = with_admin(&format!("listen = \"{listen}\"")).unwrap_err();
            assert_eq!(problems.len(), 1, "{listen}: {problems:?}");
            let shown = problems[0].to_string();
            assert!(shown.starts_with("admin.token_file: ") && shown.contains("admin.listen"), "{shown}");
        }
        for listen in ["127.0.0.1:9090", "127.0.0.53:9090", "[::1]:9090", "[::ffff:127.0.0.1]:9090"] {
            let config = with_admin(&format!("listen = \"{listen}\"")).unwrap_or_else(|p| panic!("{listen}: {p:?}"));
            assert!(config.admin.is_loopback() && config.admin.token_file.is_none(), "{listen}");
        }
        let config = with_admin("listen = \"0.0.0.0:9090\"\ntoken_file = \"admin.token\"").unwrap();
        assert_eq!(config.admin.token_file.as_deref(), Some(Path::new("/etc/portico/admin.token")));
        let problems = with_admin("token_file = \"\"").unwrap_err();
        assert_eq!(problems[0].key, "admin.token_file", "{problems:?}");
        // A bad address is named as itself, not as a missing token.
        let problems = with_admin("listen = \"nowhere\"").unwrap_err();
        assert_eq!(problems.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["admin.listen"]);
    }

    /// Issue 12: the counts' zone and retention, each refused by its key.
    #[test]
    fn the_counts_zone_and_retention_are_checked() {
        let with = |venue: &str, state: &str| {
            let text = format!(
                "[venue]\nname = \"Ga\"\n{venue}\n[portal]\npublic_url = \"http://10.0.0.1:8080/\"\n\
                 [firewall]\nbackend = \"none\"\n[state]\n{state}\n"
            );
            parse(&text, Path::new("/etc/portico"))
        };
        let config = with("", "").unwrap();
        assert_eq!((config.venue.timezone.name(), config.state.retention_days), ("Asia/Ho_Chi_Minh", 400));
        let config = with("timezone = \"Asia/Bangkok\"", "retention = \"30d\"").unwrap();
        assert_eq!((config.venue.timezone.name(), config.state.retention_days), ("Asia/Bangkok", 30));
        let keys = |r: Result<Config, Vec<Problem>>| r.unwrap_err().into_iter().map(|p| p.key).collect::<Vec<_>>();
        assert_eq!(keys(with("timezone = \"Asia/Saigon City\"", "")), ["venue.timezone"]);
        for bad in ["\"12h\"", "\"0d\"", "\"soon\""] {
            assert_eq!(keys(with("", &format!("retention = {bad}"))), ["state.retention"], "{bad}");
        }
    }
}
