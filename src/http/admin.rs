//! The operator's listener (loopback by default): `/healthz` for the
//! supervisor, `/metrics` for Prometheus, `/` a status page that reads the
//! same numbers, and `/clients` for `portico clients list|revoke|trust|untrust`. Nothing
//! here is reachable from the clients' side unless the operator binds it
//! there, which needs `admin.token_file`. With a token configured, every
//! endpoint but those three wants it (see `bearer`); the status page shows
//! counts, never a device, so it stays open like `/metrics`. Without a
//! token, a change is only taken from loopback.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use serde::Serialize;

use super::bearer::{self, Admitted};
use super::body::{self, Body};
use super::{Conn, Portal, alerting, monitoring};
use crate::client;
use crate::config::Backend;
use crate::grant::{Device, Grant, MacAddr, to_unix_ms};
use crate::sessions::{Sessions, TrustError};
use crate::trusted::{self, Source, TrustedDevice, UntrustError};
use crate::views::operator::{self, CampaignLanguage, Certificate, FirewallHealth, Health, LocalTime, OperatorFacts};

pub async fn handle(portal: &Portal, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    let admitted = match req.uri().path() {
        // The numbers: what a supervisor and Prometheus read, no device.
        "/metrics" | "/healthz" | "/" => None,
        _ => match bearer::admit(portal, &conn, req.headers()) {
            Ok(admitted) => Some(admitted),
            Err(refused) => {
                portal.metrics.rejected(refused.reason());
                return refused.response();
            }
        },
    };
    if req.method() == Method::POST {
        let path = req.uri().path();
        if !["/clients/revoke", "/clients/trust", "/clients/untrust", "/alert", "/alert/clear"].contains(&path) {
            return body::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        if admitted != Some(Admitted::Token) && !conn.peer.ip().to_canonical().is_loopback() {
            return body::text(StatusCode::FORBIDDEN, "changes are only accepted from the gateway itself\n");
        }
        return match path {
            "/clients/revoke" => revoke(portal, req.uri().query()).await,
            "/clients/trust" => trust(portal, req).await,
            "/alert" => alerting::set(portal, req).await,
            "/alert/clear" => alerting::clear(portal).await,
            _ => untrust(portal, req.uri().query()).await,
        };
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return body::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let now = SystemTime::now();
    match req.uri().path() {
        "/clients" => {
            let mut res = body::response(StatusCode::OK, "application/json", Bytes::new());
            *res.body_mut() = Body::pieces(ClientList::new(portal.sessions.clone(), now));
            res
        }
        "/clients/trusted" => json(StatusCode::OK, &trusted_json(&portal.sessions)),
        "/alert" => alerting::show(portal),
        "/healthz" => monitoring::health(portal),
        "/metrics" => monitoring::metrics(portal, now),
        "/" => operator_page(portal, &req, now),
        _ => body::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// One client as `portico clients list --json` prints it:
/// `{"ip", "mac", "addresses", "expires" (Unix seconds), "seconds_remaining"}`,
/// `ip` being where it tapped *Connect* and `addresses` every address it
/// has been seen on, `ip` first. Written straight from the grant, with no
/// copy of its fields: a list of 100,000 grants costs only its own bytes.
struct ClientJson<'a> {
    grant: &'a Grant,
    now: SystemTime,
}

impl<'a> ClientJson<'a> {
    fn new(grant: &'a Grant, now: SystemTime) -> ClientJson<'a> {
        ClientJson { grant, now }
    }
}

impl Serialize for ClientJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let g = self.grant;
        let mut out = s.serialize_struct("client", 5)?;
        out.serialize_field("ip", &g.ip())?;
        out.serialize_field("mac", &g.mac().map(Text))?;
        out.serialize_field("addresses", &Addresses(g))?;
        out.serialize_field("expires", &(to_unix_ms(g.expires) / 1000))?;
        out.serialize_field("seconds_remaining", &g.remaining(self.now).as_secs())?;
        out.end()
    }
}

/// The body of `/clients`: a JSON array of [`ClientJson`], one per line,
/// the soonest to expire first, made [`ClientList::PAGE`] grants at a time
/// as the connection takes them. It lists the grants live when it was
/// asked for; one revoked or expired meanwhile is left out.
struct ClientList {
    sessions: Sessions,
    devices: std::vec::IntoIter<Device>,
    now: SystemTime,
    /// The `[` is written.
    open: bool,
    /// No client is written yet.
    first: bool,
    done: bool,
}

impl ClientList {
    /// Grants per piece: about 50 KiB of JSON, and the grant table is
    /// locked for a few microseconds at a time.
    const PAGE: usize = 512;

    fn new(sessions: Sessions, now: SystemTime) -> ClientList {
        let devices = sessions.live_devices(now).into_iter();
        ClientList { sessions, devices, now, open: false, first: true, done: false }
    }
}

impl Iterator for ClientList {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(Self::PAGE * 110);
        if !self.open {
            out.push(b'[');
            self.open = true;
        }
        let page: Vec<Device> = self.devices.by_ref().take(Self::PAGE).collect();
        self.sessions.each_live(&page, self.now, |grant| {
            out.extend_from_slice(if self.first { b"\n" } else { b",\n" });
            self.first = false;
            // Addresses, strings and integers always serialise.
            let _ = serde_json::to_writer(&mut out, &ClientJson::new(grant, self.now));
        });
        if page.is_empty() {
            self.done = true;
            out.extend_from_slice(if self.first { b"]\n" } else { b"\n]\n" });
        }
        Some(Bytes::from(out))
    }
}

/// A value written as its `Display` text.
struct Text<T>(T);

impl<T: std::fmt::Display> Serialize for Text<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

struct Addresses<'a>(&'a Grant);

impl Serialize for Addresses<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.addresses())
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

/// One trusted device as `/clients/trusted` lists it and
/// `POST /clients/trust` takes it: `{"mac", "name", "source"}`, `source`
/// being `config` or `added` (at run time).
#[derive(Serialize, serde::Deserialize)]
struct TrustedJson {
    mac: String,
    #[serde(default)]
    name: String,
    #[serde(default, skip_deserializing)]
    source: Option<Source>,
}

fn trusted_json(sessions: &Sessions) -> Vec<TrustedJson> {
    let devices = sessions.trusted_devices().into_iter();
    devices.map(|(d, source)| TrustedJson { mac: d.mac.to_string(), name: d.name, source: Some(source) }).collect()
}

/// `POST /clients/trust` with `{"mac", "name"}`.
async fn trust(portal: &Portal, req: Request<Incoming>) -> Response<Body> {
    use http_body_util::BodyExt as _;
    // A name and a MAC: anything longer is not one.
    const LIMIT: u64 = 4096;
    let length = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match length {
        None => return body::text(StatusCode::LENGTH_REQUIRED, "give the JSON body with its Content-Length\n"),
        Some(n) if n > LIMIT => return body::text(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 4 KiB\n"),
        Some(_) => {}
    }
    let bytes = match http_body_util::Limited::new(req.into_body(), LIMIT as usize).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return body::text(StatusCode::BAD_REQUEST, "the body could not be read\n"),
    };
    let asked: TrustedJson = match serde_json::from_slice(&bytes) {
        Ok(asked) => asked,
        Err(e) => return body::text(StatusCode::BAD_REQUEST, format!("give {{\"mac\": …, \"name\": …}}: {e}\n")),
    };
    let Ok(mac) = asked.mac.parse::<MacAddr>() else {
        return body::text(StatusCode::BAD_REQUEST, format!("{:?} is not a MAC address\n", asked.mac));
    };
    let name = match trusted::check_name(&asked.name) {
        Ok(name) => name,
        Err(e) => return body::text(StatusCode::BAD_REQUEST, format!("the name {e}\n")),
    };
    match portal.sessions.trust(TrustedDevice { mac, name }).await {
        Ok(()) => json(StatusCode::OK, &trusted_json(&portal.sessions)),
        Err(e) => body::text(StatusCode::SERVICE_UNAVAILABLE, format!("could not trust {mac}: {e}\n")),
    }
}

/// `POST /clients/untrust?mac=<mac>`.
async fn untrust(portal: &Portal, query: Option<&str>) -> Response<Body> {
    let Some(mac) = query.and_then(|q| q.strip_prefix("mac=")).and_then(|m| m.parse::<MacAddr>().ok()) else {
        return body::text(StatusCode::BAD_REQUEST, "give ?mac=<mac>\n");
    };
    match portal.sessions.untrust(mac).await {
        Ok(()) => json(StatusCode::OK, &trusted_json(&portal.sessions)),
        Err(TrustError::Untrust(e @ UntrustError::Unknown(_))) => body::text(StatusCode::NOT_FOUND, format!("{e}\n")),
        Err(TrustError::Untrust(e)) => body::text(StatusCode::CONFLICT, format!("{e}\n")),
        Err(e) => body::text(StatusCode::SERVICE_UNAVAILABLE, format!("could not untrust {mac}: {e}\n")),
    }
}

/// `GET /`: the operator's page (see [`operator`]), in the language asked
/// for, from the numbers as they are at `now`.
fn operator_page(portal: &Portal, req: &Request<Incoming>, now: SystemTime) -> Response<Body> {
    let accept_language = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = operator::Lang::choose(req.uri().query(), accept_language);
    let live = portal.live.load();
    let zone = &live.config.venue.timezone;
    let m = &portal.metrics;
    let campaign = &live.campaign;
    let (today, tally) = portal.counts.today(now);
    let past = portal.counts.past(operator::DAYS - 1, now);
    let (applied, reloaded) = m.last_reload();
    let facts = OperatorFacts {
        venue: &live.config.venue,
        now: LocalTime::at(zone, now),
        uptime: m.uptime(),
        health: Health {
            firewall: FirewallHealth {
                backend: live.config.firewall.backend_name(),
                logs_only: live.config.firewall.backend == Backend::None,
                installed: !portal.gate.refused(),
                repairs: m.firewall_repairs.load(Ordering::Relaxed),
                last_repair: m.last_firewall_repair().map(|t| LocalTime::at(zone, t)),
            },
            grants_degraded: portal.sessions.degraded(),
            counts_degraded: portal.counts.degraded(),
            certificate: live.tls_expiry.map(|expiry| Certificate::new(zone, expiry, now)),
            campaign: &campaign.name,
            languages: (campaign.locales.iter().enumerate())
                .map(|(i, l)| CampaignLanguage {
                    tag: &l.tag,
                    name: &l.text.language_name,
                    default: i == campaign.default,
                })
                .collect(),
            on_air: Some(live.on_air(today)).filter(|names| *names != [campaign.name.as_str()]).unwrap_or_default(),
            alert: live.alert.as_ref().map(|a| {
                let title = &a.notice.text_for(lang.tag()).title;
                (title.as_str(), a.open_gate, LocalTime::at(zone, a.since))
            }),
            last_reload: (applied, LocalTime::at(zone, reloaded)),
        },
        online_now: portal.sessions.active(now) as u64,
        today,
        today_total: tally.total,
        by_hour: tally.by_hour,
        days: operator::last_days(today, tally.total, &past),
    };
    let html = operator::page(&facts, lang).into_string();
    let mut res = body::response(StatusCode::OK, body::HTML, Bytes::from(html));
    let h = res.headers_mut();
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    // Nothing but its own inline style: no script, no other origin.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(OPERATOR_CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

const OPERATOR_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
