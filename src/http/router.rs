//! The portal's one router: every request is either for a foreign host
//! (an OS probe or a page the phone wanted, intercepted by the firewall) or
//! for the portal's own pages.
//!
//! What must stay true:
//! - the client is the TCP peer of the connection, never anything it sends;
//! - a client without a grant asking for a foreign host gets **302** to the
//!   portal (never 511: Android and ChromeOS read 511 as "no internet" and
//!   show no popup);
//! - nothing from the request becomes a `Location` (no open redirect);
//! - an answer to a foreign host closes its connection: the firewall's NAT
//!   sent it here, and conntrack would send every later request on it here
//!   too, even after the grant (see [`crate::intercepts`]);
//! - TLS (and so HTTP/2) only ever carries the portal's own host: a foreign
//!   host there is misdirected (421), as Portico never intercepts TLS;
//! - a request with two `Host` headers, or one that disagrees with the
//!   request-target's authority, is 400 (RFC 9112 §3.2, RFC 9113 §8.3.1).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use super::body::{self, Body};
use super::{Live, Portal, ProxiedSlot, Rejection, captive};
use crate::campaign::Campaign;
use crate::client::Client;
use crate::counts::{Action, Seen};
use crate::grant::Device;
use crate::metrics::Outcome;
use crate::pages::Pages;
use crate::platform::Platform;
use crate::probes::{self, ProbeAnswer};
use crate::schedule;

/// Facts about the connection a request arrived on.
#[derive(Clone)]
pub struct Conn {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// For a connection from a trusted proxy: its connection slot, counted
    /// against the client of the request it carries.
    pub proxy_slot: Option<Arc<ProxiedSlot>>,
}

pub async fn handle(portal: &Portal, conn: Conn, req: Request<Incoming>) -> Response<Body> {
    let client = portal.address_of(conn.peer.ip(), req.headers());
    if let Some(slot) = &conn.proxy_slot
        && !portal.guard.carry(slot, client)
    {
        portal.metrics.rejected(Rejection::ClientConnections);
        return closing(too_many_requests(std::time::Duration::from_secs(1)));
    }
    if let Err((why, wait)) = portal.guard.admit(client) {
        portal.metrics.rejected(why);
        return too_many_requests(wait);
    }
    let now = SystemTime::now();
    let live = portal.live.load();
    let host = match request_host(&req) {
        Ok(host) => host,
        Err(why) => {
            portal.metrics.request(Outcome::BadRequest);
            return closing(body::text(StatusCode::BAD_REQUEST, format!("{why}\n")));
        }
    };
    let own = match &host {
        // HTTP/1.1 requires a Host (RFC 9112 §3.2); HTTP/1.0 may omit it, and
        // such a request can only be for whoever answers: the portal.
        None if req.version() == Version::HTTP_11 => {
            portal.metrics.request(Outcome::BadRequest);
            return body::text(StatusCode::BAD_REQUEST, "a Host header is required\n");
        }
        None => true,
        Some(h) => is_own_host(&live, h, conn.local.ip()),
    };
    let (res, outcome) = if own && !conn.tls && wants_https(&live, &req) {
        // With TLS on, the portal's own pages are read over https. Probes
        // (foreign hosts) keep their plain 302 above; the accept POST is
        // taken on either; and no HSTS is ever sent: a phone must still be
        // redirected over plain http on its next visit.
        let location = https_url(&live, &req);
        (body::redirect(StatusCode::FOUND, &location, Bytes::new()), Outcome::HttpsRedirect)
    } else if own {
        own_page(portal, &live, client, now, req).await
    } else if conn.tls {
        let res = body::text(StatusCode::MISDIRECTED_REQUEST, "this connection serves only the portal\n");
        (res, Outcome::BadRequest)
    } else {
        let (res, outcome) = foreign(portal, &live, client, now, host.as_deref().unwrap_or(""), req.uri().path());
        (closing(res), outcome)
    };
    portal.metrics.request(outcome);
    res
}

/// Marks an HTTP/1 answer as the last on its connection. (HTTP/2 has no
/// such header, and never carries a foreign host here.)
fn closing(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Whether a plain-http request for the portal's pages should move to https.
fn wants_https(live: &Live, req: &Request<Incoming>) -> bool {
    let readable = req.method() == Method::GET || req.method() == Method::HEAD;
    readable && live.tls.is_some() && live.config.portal.public_url.https
}

/// The same page on the public https URL. The host is the configured one,
/// never the request's, and the path is joined below it, so nothing the
/// client sends can point the redirect elsewhere.
fn https_url(live: &Live, req: &Request<Incoming>) -> String {
    let base = live.config.portal.public_url.url.trim_end_matches('/');
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("{base}/{}", path_and_query.trim_start_matches('/'))
}

/// A request intercepted on its way to another host.
fn foreign(
    portal: &Portal,
    live: &Live,
    client: IpAddr,
    now: SystemTime,
    host: &str,
    path: &str,
) -> (Response<Body>, Outcome) {
    let pages = &live.pages;
    // With the gate open (an alert's), every device is online: its probes
    // are answered so, and the firewall lets it through.
    let client = portal.client_at(client);
    if !live.gate_open() && portal.sessions.lookup(&client, now).is_none() && !portal.sessions.is_trusted(&client) {
        let res = body::redirect(StatusCode::FOUND, &pages.portal_url, pages.portal_redirect_body.clone());
        return (res, Outcome::ProbeRedirect);
    }
    match probes::classify(host, path) {
        Some(ProbeAnswer::NoContent) => (body::empty(StatusCode::NO_CONTENT), Outcome::ProbeSuccess),
        Some(ProbeAnswer::Ok { body: text, content_type }) => {
            (body::response(StatusCode::OK, content_type, Bytes::from_static(text.as_bytes())), Outcome::ProbeSuccess)
        }
        None => {
            let res = body::redirect(StatusCode::FOUND, &pages.welcome_url, pages.welcome_redirect_body.clone());
            (res, Outcome::WelcomeRedirect)
        }
    }
}

async fn own_page(
    portal: &Portal,
    live: &Live,
    client: IpAddr,
    now: SystemTime,
    req: Request<Incoming>,
) -> (Response<Body>, Outcome) {
    let query_lang = query_param(req.uri().query(), "lang");
    let accept_language = header_str(&req, header::ACCEPT_LANGUAGE);
    let (campaign, pages, device) = showing(portal, live, client, now);
    let lang = campaign.negotiate(query_lang, accept_language);
    let tag = campaign.locales[lang].tag.as_str();
    let platform = Platform::from_user_agent(header_str(&req, header::USER_AGENT).unwrap_or(""));
    let method = req.method().clone();
    let readable = method == Method::GET || method == Method::HEAD;

    match (readable, req.uri().path()) {
        (true, "/") => {
            portal.metrics.splash_view(&campaign.name, tag);
            if method == Method::GET {
                count_splash(portal, device, client, Seen { lang: tag, campaign: &campaign.name, platform }, now);
            }
            (body::page(StatusCode::OK, pages.splash(lang, platform), tag), Outcome::Splash)
        }
        (true, "/welcome") => (body::page(StatusCode::OK, pages.welcome(lang, platform), tag), Outcome::Welcome),
        (true, "/api/captive") => (captive::api(portal, live, portal.client_at(client), now), Outcome::Api),
        (true, "/signage") => {
            let mut res = body::page(StatusCode::OK, pages.signage(lang), tag);
            let after = crate::views::reload_after(pages.board_languages);
            res.headers_mut().insert(header::REFRESH, HeaderValue::from(after));
            (res, Outcome::Signage)
        }
        (true, "/poster") => (body::page(StatusCode::OK, pages.poster(lang), tag), Outcome::Poster),
        (true, "/assets/portico.css") => (stylesheet(pages.stylesheet.clone()), Outcome::Asset),
        (true, "/assets/boards.css") => (stylesheet(pages.boards_stylesheet.clone()), Outcome::Asset),
        // Any count a board may have cached a page for; the current one from
        // the pages.
        (true, path) if path.starts_with("/assets/signage-cycle-") => {
            let count =
                path["/assets/signage-cycle-".len()..].strip_suffix(".css").and_then(|n| n.parse::<usize>().ok());
            match count {
                Some(n) if n == pages.board_languages => (stylesheet(pages.signage_cycle.clone()), Outcome::Asset),
                Some(n @ 1..=64) => (stylesheet(Bytes::from(crate::views::cycle_css(n))), Outcome::Asset),
                _ => (body::page(StatusCode::NOT_FOUND, pages.not_found(lang), tag), Outcome::NotFound),
            }
        }
        // Only a file the campaign declared is ever served: the name is
        // looked up, never joined to a path.
        (true, path) if path.starts_with("/assets/campaign/") => {
            match campaign.image(&path["/assets/campaign/".len()..]) {
                Some(image) => {
                    let mut res = body::response(StatusCode::OK, image.content_type, image.bytes.clone());
                    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
                    res.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                    // An SVG opened on its own is a document of the portal's
                    // origin. `sandbox`: an opaque origin, no script, no forms;
                    // `default-src 'none'`: it loads nothing; `style-src
                    // 'unsafe-inline'`: its own style="" still draws.
                    let csp = "default-src 'none'; style-src 'unsafe-inline'; sandbox";
                    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
                    (res, Outcome::Asset)
                }
                None => (body::page(StatusCode::NOT_FOUND, pages.not_found(lang), tag), Outcome::NotFound),
            }
        }
        (true, path @ ("/go/google-play" | "/go/app-store")) => {
            let (action, url) = match path {
                "/go/google-play" => (Action::GooglePlay, &campaign.links.google_play),
                _ => (Action::AppStore, &campaign.links.app_store),
            };
            if method == Method::GET {
                portal.counts.acted(&portal.client_at(client).device(), action, &campaign.name, now);
            }
            (body::redirect(StatusCode::FOUND, url, Bytes::new()), Outcome::Store)
        }
        (true, "/installed") => (body::page(StatusCode::OK, pages.installed(lang), tag), Outcome::Installed),
        (false, "/installed") if method == Method::POST => {
            portal.counts.acted(&portal.client_at(client).device(), Action::Installed, &campaign.name, now);
            let location = format!("/installed?lang={tag}");
            (body::redirect(StatusCode::SEE_OTHER, &location, Bytes::new()), Outcome::Installed)
        }
        (false, "/") if method == Method::POST => {
            accept(portal, live, (campaign, pages), portal.client_at(client), lang, platform, req).await
        }
        (false, "/" | "/welcome" | "/api/captive") => {
            let mut res = body::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            let allow = if req.uri().path() == "/" { "GET, HEAD, POST" } else { "GET, HEAD" };
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            (res, Outcome::BadRequest)
        }
        _ => (body::page(StatusCode::NOT_FOUND, pages.not_found(lang), tag), Outcome::NotFound),
    }
}

/// The campaign a request from `ip` is served (see [`crate::schedule`]),
/// and the device, if the choice depended on it. The device is looked up
/// only then.
fn showing<'a>(
    portal: &Portal,
    live: &'a Live,
    ip: IpAddr,
    now: SystemTime,
) -> (&'a Campaign, &'a Pages, Option<Device>) {
    let entries = &live.config.campaigns;
    if entries.is_empty() {
        let (campaign, pages) = live.showing(None);
        return (campaign, pages, None);
    }
    let (day, kind) = (portal.counts.day(now), live.config.venue.kind);
    let available = |i| live.available(i);
    let (hash, device) = if schedule::depends_on_device(entries, kind, day, available) {
        let device = portal.client_at(ip).device();
        (portal.counts.device_hash(&device, now), Some(device))
    } else {
        (0, None)
    };
    let (campaign, pages) = live.showing(schedule::pick(entries, kind, day, hash, available));
    (campaign, pages, device)
}

/// Counts a splash view by the device at `ip` (see [`crate::counts`]),
/// looked up unless `showing` already did.
fn count_splash(portal: &Portal, device: Option<Device>, ip: IpAddr, seen: Seen, now: SystemTime) {
    let device = device.unwrap_or_else(|| portal.client_at(ip).device());
    // Asked only of a device the counts saw granted until later: whether
    // its grant was revoked.
    let still_granted = || portal.sessions.get(device, now).is_some();
    portal.counts.splash(&device, seen, now, still_granted);
}

/// 429 with the seconds until the client's bucket has room again.
pub(super) fn too_many_requests(wait: std::time::Duration) -> Response<Body> {
    let mut res = body::text(StatusCode::TOO_MANY_REQUESTS, "too many requests; slow down\n");
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn stylesheet(css: Bytes) -> Response<Body> {
    let mut res = body::response(StatusCode::OK, "text/css; charset=utf-8", css);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

/// The *Connect* tap. The form's content is read only for the language of
/// the next page; who is granted is the TCP peer.
async fn accept(
    portal: &Portal,
    live: &Live,
    (campaign, pages): (&Campaign, &Pages),
    client: Client,
    lang: usize,
    platform: Platform,
    req: Request<Incoming>,
) -> (Response<Body>, Outcome) {
    // The head had a deadline; the body gets the same one, or a client
    // that announces a body and never sends it holds a connection for ever.
    let limits = &portal.limits;
    let read = Limited::new(req.into_body(), limits.max_form_bytes).collect();
    let form = match tokio::time::timeout(limits.header_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return (body::text(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n"), Outcome::BadRequest);
        }
        Ok(Err(_)) => {
            return (body::text(StatusCode::BAD_REQUEST, "could not read the form\n"), Outcome::BadRequest);
        }
        Err(_) => {
            portal.metrics.rejected(Rejection::BodyTimeout);
            let mut res = body::text(StatusCode::REQUEST_TIMEOUT, "the form took too long to arrive\n");
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return (res, Outcome::BadRequest);
        }
    };
    let form_lang = std::str::from_utf8(&form).ok().and_then(|f| query_param(Some(f), "lang"));
    let lang = form_lang.and_then(|t| campaign.locale_index(t)).unwrap_or(lang);
    let tag = campaign.locales[lang].tag.as_str();
    let also = client.mac.map(|mac| portal.neighbours.addresses_of(mac)).unwrap_or_default();
    match portal.sessions.accept(&client, &also, live.config.portal.session).await {
        Ok(grant) => {
            let seen = Seen { lang: tag, campaign: &campaign.name, platform };
            portal.counts.connected(&grant.device, seen, SystemTime::now(), grant.expires);
            let closed = portal.intercepts.close(grant.device);
            if closed > 0 {
                tracing::debug!(device = %grant.device, closed, "closing connections intercepted before the grant");
            }
            // A full navigation to /welcome is what makes the iOS sheet
            // re-probe and show "Done".
            let location = format!("/welcome?lang={tag}");
            (body::redirect(StatusCode::SEE_OTHER, &location, Bytes::new()), Outcome::Accept)
        }
        Err(e) => {
            tracing::error!(client = %client.ip, error = %e, "grant failed; the phone is asked to retry");
            let mut res = body::page(StatusCode::SERVICE_UNAVAILABLE, pages.retry(lang), tag);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            (res, Outcome::Unavailable)
        }
    }
}

/// The host a request is for, lower case, without port or trailing dot:
/// from the URI's authority (HTTP/2, absolute-form) or the `Host` header;
/// `Ok(None)` when there is neither. Two `Host` headers, one that cannot be
/// read, or one that names another host than the authority are refused.
fn request_host(req: &Request<Incoming>) -> Result<Option<String>, &'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err("more than one Host header");
    }
    let header = match header {
        Some(v) => Some(
            authority_host(v.to_str().map_err(|_| "an unreadable Host header")?).ok_or("a malformed Host header")?,
        ),
        None => None,
    };
    match (req.uri().authority(), header) {
        (Some(a), header) => {
            let target = authority_host(a.as_str()).ok_or("a malformed request-target")?;
            match header {
                Some(h) if h != target => Err("the Host header names another host than the request-target"),
                _ => Ok(Some(target.0)),
            }
        }
        (None, header) => Ok(header.map(|h| h.0)),
    }
}

/// Host (lower case, no trailing dot) and port, if given, of an authority.
/// Two authorities name the same host when both parts agree, a missing
/// port agreeing with any.
#[derive(Debug)]
struct HostPort(String, Option<String>);

impl PartialEq for HostPort {
    fn eq(&self, other: &HostPort) -> bool {
        self.0 == other.0 && (self.1.is_none() || other.1.is_none() || self.1 == other.1)
    }
}

fn authority_host(raw: &str) -> Option<HostPort> {
    let (host, port) = crate::config::split_host_port(raw.trim())?;
    let port = port.filter(|p| !p.is_empty()).map(str::to_owned);
    Some(HostPort(host.trim_end_matches('.').to_ascii_lowercase(), port))
}

/// The portal's own host: the public URL's host, or the address the client
/// connected to, written as an IP literal.
fn is_own_host(live: &Live, host: &str, local: IpAddr) -> bool {
    if host == live.config.portal.public_url.host {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical() == local.to_canonical())
}

fn header_str<K: header::AsHeaderName>(req: &Request<Incoming>, name: K) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The first value of `name` in a query or form string, undecoded: the only
/// values we read (language tags) never need decoding, and anything that
/// does is not a tag.
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_finds_the_first_value() {
        assert_eq!(query_param(Some("a=1&lang=en&lang=vi"), "lang"), Some("en"));
        assert_eq!(query_param(Some("lang"), "lang"), None);
        assert_eq!(query_param(None, "lang"), None);
    }
}
