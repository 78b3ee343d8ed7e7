//! The operator's TOML file, turned into a validated, immutable [`Config`].
//!
//! Two types on purpose: `raw` mirrors the file (strings, options,
//! `deny_unknown_fields`), and [`Config`] holds only values that are already
//! known to be good (a `SocketAddr`, a `Duration`, a parsed URL). Validation
//! collects *every* problem rather than stopping at the first, and each
//! [`Problem`] names the key (`portal.session`) and, where the TOML parser
//! knows it, the line, so `portico check` can print one line per problem.

mod check;
mod limits;
mod raw;
mod token;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use check::parse_duration;
pub use limits::Limits;
pub use token::AdminToken;

use crate::campaign::CampaignSource;
use crate::trusted::TrustedDevice;

/// A validated configuration. Everything in it has been checked.
#[derive(Clone, Debug)]
pub struct Config {
    pub venue: Venue,
    pub portal: PortalSection,
    pub tls: Option<Tls>,
    pub firewall: FirewallSection,
    pub state: State,
    pub admin: Admin,
    pub limits: Limits,
    pub walled_garden: WalledGarden,
    /// `[[trusted]]`: devices that pass without a grant.
    pub trusted: Vec<TrustedDevice>,
    /// `[[campaigns]]`: the scheduled campaigns, in the file's order;
    /// `portal.campaign` shows on a day none of them is on the air.
    pub campaigns: Vec<ScheduledCampaign>,
}

#[derive(Clone, Debug)]
pub struct Venue {
    pub name: String,
    pub kind: VenueKind,
    pub province: Option<String>,
    /// `timezone`: the IANA zone whose days the counts are kept in.
    pub timezone: crate::counts::Zone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VenueKind {
    Station,
    Airport,
    Port,
    Bus,
    Ferry,
    Other,
}

impl VenueKind {
    pub const ALL: [(&'static str, VenueKind); 6] = [
        ("station", VenueKind::Station),
        ("airport", VenueKind::Airport),
        ("port", VenueKind::Port),
        ("bus", VenueKind::Bus),
        ("ferry", VenueKind::Ferry),
        ("other", VenueKind::Other),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("other", |(s, _)| s)
    }
}

#[derive(Clone, Debug)]
pub struct PortalSection {
    pub listen: SocketAddr,
    pub public_url: PublicUrl,
    pub session: Duration,
    pub campaign: CampaignSource,
}

/// One `[[campaigns]]` entry: a campaign and when and where it is on the
/// air (see [`crate::schedule`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledCampaign {
    pub source: CampaignSource,
    /// The first and last day (the venue's), both included; open-ended
    /// when absent.
    pub from: Option<crate::counts::Day>,
    pub until: Option<crate::counts::Day>,
    /// The venue kinds it is for; every kind when empty.
    pub kinds: Vec<VenueKind>,
    /// Its share among the campaigns on the air the same day.
    pub weight: u32,
}

#[derive(Clone, Debug)]
pub struct Tls {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallSection {
    pub backend: Backend,
    pub interfaces: Vec<String>,
    pub table: String,
    /// `device_rate`: each device's share of the download, if limited.
    pub device_rate: Option<Rate>,
    /// `device_upload_rate`: each device's share of the upload, if limited.
    pub device_upload_rate: Option<Rate>,
    /// `limit_trusted`: whether trusted devices are held to the rates too
    /// (by default they are exempt).
    pub limit_trusted: bool,
}

/// A rate in bits per second, written like `"4mbit"` or `"512kbit"` (SI
/// units, as `tc` writes them: 1 kbit = 1000 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub bits_per_second: u64,
}

impl Rate {
    /// The slowest rate a device may be held to: below it, a phone's
    /// TCP cannot hold a page load together.
    pub const MIN: Rate = Rate { bits_per_second: 64_000 };
    pub const MAX: Rate = Rate { bits_per_second: 100_000_000_000 };

    /// Parses `"4mbit"`, `"512kbit"`, `"1.5mbit"`, `"1gbit"`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let err = || format!("{s:?} is not a rate (like \"4mbit\", \"512kbit\"; units kbit mbit gbit)");
        let text = s.trim().to_ascii_lowercase();
        let split = text.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(err)?;
        let (number, unit) = text.split_at(split);
        let scale: f64 = match unit {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            _ => return Err(err()),
        };
        let number: f64 = number.trim().parse().map_err(|_| err())?;
        if !number.is_finite() || number <= 0.0 {
            return Err(err());
        }
        let rate = Rate { bits_per_second: (number * scale).round() as u64 };
        if rate < Rate::MIN || rate > Rate::MAX {
            return Err(format!("{s:?} is outside {} to {}", Rate::MIN, Rate::MAX));
        }
        Ok(rate)
    }

    pub fn bytes_per_second(self) -> u64 {
        self.bits_per_second / 8
    }
}

impl PartialOrd for Rate {
    fn partial_cmp(&self, other: &Rate) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rate {
    fn cmp(&self, other: &Rate) -> std::cmp::Ordering {
        self.bits_per_second.cmp(&other.bits_per_second)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bits_per_second;
        match b {
            _ if b >= 1_000_000_000 && b.is_multiple_of(1_000_000) => write!(f, "{}gbit", b as f64 / 1e9),
            _ if b >= 1_000_000 && b.is_multiple_of(1_000) => write!(f, "{}mbit", b as f64 / 1e6),
            _ if b >= 1_000 => write!(f, "{}kbit", b as f64 / 1e3),
            _ => write!(f, "{b}bit"),
        }
    }
}

/// `[walled_garden]`: names a device without a grant may reach (see
/// [`crate::garden`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalledGarden {
    /// Names, each with its subdomains.
    pub hosts: Vec<String>,
    /// The ports (TCP and UDP) open to them; `[443]` by default.
    pub ports: Vec<u16>,
}

impl WalledGarden {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nftables,
    None,
}

impl FirewallSection {
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Nftables => "nftables",
            Backend::None => "none",
        }
    }
}

#[derive(Clone, Debug)]
pub struct State {
    pub dir: PathBuf,
    /// `retention`: how many days of counts are kept (`"400d"` by default).
    pub retention_days: u32,
}

impl State {
    /// `state.retention` when the file does not set it: a little more
    /// than a year.
    pub const DEFAULT_RETENTION_DAYS: u32 = 400;
}

#[derive(Clone, Debug)]
pub struct Admin {
    pub listen: SocketAddr,
    /// `token_file`: the file holding the bearer token that the control
    /// endpoints (`/clients…`) then require, whatever `listen` is. Read
    /// with [`AdminToken::read`] where it is needed.
    pub token_file: Option<PathBuf>,
}

impl Admin {
    /// Whether only this machine can reach the listener: `127.0.0.0/8` or
    /// `::1`. `0.0.0.0` and `::` are every address, not loopback.
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().to_canonical().is_loopback()
    }

    /// The problem with a listener other machines can reach and no token
    /// to guard its control endpoints; checked by the config, and again by
    /// a reload, which keeps the bound `admin.listen`.
    pub fn open_door(&self) -> Option<Problem> {
        (!self.is_loopback() && self.token_file.is_none()).then(|| Problem {
            key: "admin.token_file".into(),
            line: None,
            message: format!(
                "is required because admin.listen = \"{}\" is reachable from other machines: \
                 set it to a file holding a token (e.g. `openssl rand -hex 32 > /etc/portico/admin.token`), \
                 or listen on 127.0.0.1",
                self.listen
            ),
        })
    }
}

/// The portal's public URL, split into what the router needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    /// The whole URL, always ending in `/` after the path.
    pub url: String,
    pub https: bool,
    /// Lower-case host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl PublicUrl {
    /// Parses `http(s)://host[:port][/path]`. Query, fragment and user info
    /// are refused: the URL is sent to every client and must be plain.
    pub fn parse(s: &str) -> Result<PublicUrl, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with https:// or http://".into());
        };
        if s.contains(['?', '#', '@', ' ']) {
            return Err("must be a plain URL without user, query or fragment".into());
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = split_host_port(authority).ok_or("has no valid host")?;
        let port = match port {
            None => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
        };
        let mut url = format!("{}://{}{}", if https { "https" } else { "http" }, authority.to_ascii_lowercase(), path);
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(PublicUrl { url, https, host: host.to_ascii_lowercase(), port })
    }

    /// `scheme://host[:port]`, without the path: where paths served at the
    /// root (such as the RFC 8908 API) are.
    pub fn origin(&self) -> &str {
        // `parse` always writes `scheme://authority/path/`.
        let authority = self.url.find("://").map_or(0, |at| at + 3);
        &self.url[..self.url[authority..].find('/').map_or(self.url.len(), |at| authority + at)]
    }

    /// The URL of a page of the portal, e.g. `join("welcome")`.
    pub fn join(&self, page: &str) -> String {
        format!("{}{}", self.url, page)
    }
}

/// Splits `host[:port]` or `[v6][:port]`. Returns `None` for an empty or
/// malformed host.
pub fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (&rest[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b));
    valid.then_some((host, port))
}

/// One thing wrong with a configuration, naming where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `portal.session`, or the file for a syntax error.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {}): {}", self.key, line, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every problem found in one file.
#[derive(Debug)]
pub struct Problems {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {p}", self.file.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| Problems {
            file: path.to_owned(),
            problems: vec![Problem { key: "file".into(), line: None, message: format!("cannot read: {e}") }],
        })?;
        // A relative campaign folder is relative to the config file, which
        // is what an operator who keeps them side by side expects.
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).map_err(|problems| Problems { file: path.to_owned(), problems })
    }

    /// Validates TOML text; relative paths are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
        raw::parse(text, base)
    }

    /// The demo: the built-in campaign on loopback, no firewall, state in a
    /// per-user folder. What `portico run` does without `--config`.
    pub fn demo() -> Config {
        let listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
        Config {
            venue: Venue {
                name: "Ga Buôn Ma Thuột (demo)".into(),
                kind: VenueKind::Station,
                province: Some("Đắk Lắk".into()),
                timezone: crate::counts::Zone::default(),
            },
            portal: PortalSection {
                listen,
                public_url: PublicUrl::parse("http://127.0.0.1:8080/").expect("demo URL is valid"),
                session: Duration::from_secs(12 * 3600),
                campaign: CampaignSource::Builtin("bluezone".into()),
            },
            tls: None,
            firewall: FirewallSection {
                backend: Backend::None,
                interfaces: Vec::new(),
                table: "portico".into(),
                device_rate: None,
                device_upload_rate: None,
                limit_trusted: false,
            },
            state: State { dir: demo_state_dir(), retention_days: State::DEFAULT_RETENTION_DAYS },
            admin: Admin { listen: ([127, 0, 0, 1], 9090).into(), token_file: None },
            limits: Limits::default(),
            walled_garden: WalledGarden::default(),
            trusted: Vec::new(),
            campaigns: Vec::new(),
        }
    }
}

/// `$XDG_STATE_HOME/portico-demo`, else `~/.local/state/portico-demo`, else a
/// folder in the system's temporary directory.
fn demo_state_dir() -> PathBuf {
    let from_env = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = from_env("XDG_STATE_HOME") {
        return dir.join("portico-demo");
    }
    if let Some(home) = from_env("HOME") {
        return home.join(".local/state/portico-demo");
    }
    std::env::temp_dir().join("portico-demo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_keeps_what_the_router_needs() {
        let u = PublicUrl::parse("https://Portal.Example.vn").unwrap();
        assert_eq!(u.url, "https://portal.example.vn/");
        assert_eq!((u.host.as_str(), u.port, u.https), ("portal.example.vn", None, true));
        let u = PublicUrl::parse("http://[fd00::1]:8080/portal").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fd00::1", Some(8080)));
        assert_eq!(u.join("welcome"), "http://[fd00::1]:8080/portal/welcome");
        for bad in ["ftp://x", "https://", "https://a b", "https://x/?q=1", "https://u@x/", "http://x:99999/"] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_read_as_tc_writes_them() {
        let bits = |s: &str| Rate::parse(s).map(|r| r.bits_per_second);
        assert_eq!(bits("4mbit"), Ok(4_000_000));
        assert_eq!(bits("512kbit"), Ok(512_000));
        assert_eq!(bits("1.5mbit"), Ok(1_500_000));
        assert_eq!(bits(" 2Gbit "), Ok(2_000_000_000));
        assert_eq!(Rate::parse("4mbit").unwrap().bytes_per_second(), 500_000);
        assert_eq!(Rate::parse("1.5mbit").unwrap().to_string(), "1.5mbit");
        assert_eq!(Rate::parse("512kbit").unwrap().to_string(), "512kbit");
        for bad in ["4", "4mb", "4 mbps", "-1mbit", "0kbit", "10kbit", "nanmbit", "mbit"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }
}
