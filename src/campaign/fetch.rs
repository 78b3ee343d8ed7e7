//! Fetching a campaign bundle and its signature over https: the gateway
//! pulls, so a fleet behind NAT needs nothing pushed to it.
//!
//! One GET for the bundle, conditional on the validators of the last one
//! (`If-None-Match`, `If-Modified-Since`; a 304 is [`Fetched::NotModified`]),
//! and only when it changed one GET for `URL.minisig`. Checking the
//! signature and the campaign is the caller's ([`super::bundle`]); what
//! must stay true here:
//!
//! - https only. The signature says who made a bundle, not that it is the
//!   newest; TLS keeps a party on the path from serving an older, validly
//!   signed one, or reading which campaign a gateway runs. The certificate
//!   is verified for the URL's host (an IP address needs an IP SAN) against
//!   the system's roots, read from its PEM bundle on each fetch so an
//!   updated ca-certificates counts without a restart, plus a province's
//!   own CA (`ca`, see [`read_ca`]). No roots crate is built in: a gateway
//!   has its distribution's bundle, and OpenWrt's `ca-bundle` package.
//! - Everything a server controls is bounded ([`FetchLimits`]): the body by
//!   its Content-Length and again while it streams, each connection
//!   attempt and TLS handshake by `connect_timeout`, the whole fetch (every
//!   redirect and the signature included) by `total_timeout`, so a server
//!   that stalls costs one deadline and the previous campaign keeps
//!   serving. The defaults suit [`MAX_BUNDLE_BYTES`] over a slow uplink.
//! - Redirects are followed, at most [`MAX_REDIRECTS`], to https only: a
//!   province may publish behind a CDN or a release page that redirects,
//!   and the signature, not the host, is what makes a bundle trusted.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::bundle::MAX_BUNDLE_BYTES;

/// Where the system's trust roots are looked for, in order: Debian and its
/// derivatives (and OpenWrt's `ca-bundle`), then OpenWrt's and Alpine's
/// other name, then Fedora's.
pub const SYSTEM_ROOTS: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem", "/etc/pki/tls/certs/ca-bundle.crt"];

/// The most redirects followed for one file.
pub const MAX_REDIRECTS: usize = 3;

/// The largest signature file taken: minisign writes about 300 bytes; the
/// rest is room for a long trusted comment.
const MAX_SIGNATURE_BYTES: usize = 8 * 1024;

/// What a fetch may cost.
#[derive(Clone, Debug)]
pub struct FetchLimits {
    /// The largest bundle taken.
    pub max_bytes: usize,
    /// For each connection attempt, and for each TLS handshake.
    pub connect_timeout: Duration,
    /// For the whole fetch: redirects, bundle and signature.
    pub total_timeout: Duration,
}

impl Default for FetchLimits {
    /// 4 MiB (the bundle limit), 10 s to connect, 60 s in all: a full-size
    /// bundle over 1 Mbit/s takes 34 s.
    fn default() -> FetchLimits {
        FetchLimits {
            max_bytes: MAX_BUNDLE_BYTES,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
        }
    }
}

/// What the server said identifies the version it sent, sent back on the
/// next fetch to make it conditional.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    fn of(headers: &HeaderMap) -> Validators {
        let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        Validators { etag: text(header::ETAG), last_modified: text(header::LAST_MODIFIED) }
    }
}

/// The outcome of a successful fetch.
#[derive(Debug)]
pub enum Fetched {
    /// The server has nothing newer than the validators given.
    NotModified,
    /// A bundle, unverified, with the text of its `.minisig`.
    New { bundle: Vec<u8>, signature: String, validators: Validators },
}

/// Why a fetch failed; each names the URL or host.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Url(String),
    #[error(
        "no trusted roots: none of {} holds a certificate and no ca is given \
         (install ca-certificates, or ca-bundle on OpenWrt)", SYSTEM_ROOTS.join(", ")
    )]
    NoTrustRoots,
    #[error("{host}: name lookup failed: {reason}")]
    Lookup { host: String, reason: String },
    #[error("{host}: cannot connect: {reason}")]
    Connect { host: String, reason: String },
    #[error("{host}: the server's certificate is not trusted: {reason}")]
    Untrusted { host: String, reason: String },
    #[error("{host}: TLS failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url}: {reason}")]
    Redirect { url: String, reason: String },
    #[error("{url}: more than {limit} bytes, the most taken; refused")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: not done within {after:?}; refused")]
    Timeout { url: String, after: Duration },
}

/// Fetches the bundle at `url` (conditionally, given `previous`) and, when
/// it is new, its signature at `url` + `.minisig`, trusting the system's
/// roots plus `ca`.
pub async fn fetch(
    url: &str,
    ca: Option<&[CertificateDer<'static>]>,
    previous: Option<&Validators>,
    limits: &FetchLimits,
) -> Result<Fetched, FetchError> {
    let target = Target::parse(url)?;
    let connector = connector(ca.unwrap_or_default())?;
    let conditional = previous.filter(|v| !v.is_empty());
    let work = async {
        let (status, headers, bundle) = get(&connector, target, conditional, limits.max_bytes, limits).await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        let signature_url = format!("{url}.minisig");
        let (_, _, signature) =
            get(&connector, Target::parse(&signature_url)?, None, MAX_SIGNATURE_BYTES, limits).await?;
        let signature = String::from_utf8(signature)
            .map_err(|_| FetchError::Http { url: signature_url, reason: "the signature is not text".into() })?;
        Ok(Fetched::New { bundle, signature, validators: Validators::of(&headers) })
    };
    tokio::time::timeout(limits.total_timeout, work)
        .await
        .unwrap_or_else(|_| Err(FetchError::Timeout { url: url.to_owned(), after: limits.total_timeout }))
}

/// Reads a PEM file of extra trusted roots (a province's own CA); every
/// certificate in it must be usable as one.
pub fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect())
        .map_err(|e| format!("{}: cannot read PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    for (i, cert) in certs.iter().enumerate() {
        RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| format!("{}: certificate {} is not usable as a root: {e}", path.display(), i + 1))?;
    }
    Ok(certs)
}

fn connector(ca: &[CertificateDer<'static>]) -> Result<TlsConnector, FetchError> {
    let mut roots = RootCertStore::empty();
    // The first bundle that exists is the system's; certificates in it that
    // rustls cannot use are skipped, as other clients skip them.
    if let Some(system) = SYSTEM_ROOTS.iter().find_map(|path| {
        CertificateDer::pem_file_iter(path).ok()?.collect::<Result<Vec<_>, _>>().ok().filter(|c| !c.is_empty())
    }) {
        roots.add_parsable_certificates(system);
    }
    roots.add_parsable_certificates(ca.iter().cloned());
    if roots.is_empty() {
        return Err(FetchError::NoTrustRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// An https URL taken apart.
#[derive(Debug, PartialEq)]
struct Target {
    url: String,
    /// Without the brackets of an IPv6 literal.
    host: String,
    port: u16,
    /// For the Host header: as the URL spells it.
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, FetchError> {
        let bad = |why: &str| FetchError::Url(format!("{url}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("is not an https:// URL"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") => return Err(bad("http:// is refused: bundles are fetched over https only")),
            _ => return Err(bad("is not an https:// URL")),
        }
        let authority = uri.authority().ok_or_else(|| bad("names no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("a user name or password in the URL is not supported"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        Ok(Target {
            url: url.to_owned(),
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(443),
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    /// Where a redirect's `Location` points, from here.
    fn resolve(&self, location: &str) -> Result<Target, String> {
        let absolute = if location.starts_with("https://") || location.starts_with("http://") {
            location.to_owned()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("https://{rest}")
        } else if location.starts_with('/') {
            format!("https://{}{location}", self.authority)
        } else if location.split('/').next().is_some_and(|first| first.contains(':')) {
            return Err(format!("redirected to {location:?}: not an https URL"));
        } else {
            let path = self.path.split('?').next().unwrap_or("/");
            let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("https://{}{folder}{location}", self.authority)
        };
        Target::parse(&absolute).map_err(|e| format!("redirected to {location:?}: {e}"))
    }
}

/// One GET, following redirects; a 200's body (at most `max_bytes`), or
/// a 304 when `conditional` was sent.
async fn get(
    connector: &TlsConnector,
    mut target: Target,
    conditional: Option<&Validators>,
    max_bytes: usize,
    limits: &FetchLimits,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), FetchError> {
    let first = target.url.clone();
    for hop in 0..=MAX_REDIRECTS {
        let (mut sender, _connection) = connect(connector, &target, limits.connect_timeout).await?;
        let mut request = Request::get(target.path.as_str())
            .header(header::HOST, target.authority.as_str())
            .header(header::USER_AGENT, concat!("portico/", env!("CARGO_PKG_VERSION")))
            .header(header::CONNECTION, "close");
        if let Some(v) = conditional {
            for (name, value) in [(header::IF_NONE_MATCH, &v.etag), (header::IF_MODIFIED_SINCE, &v.last_modified)] {
                if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                    request = request.header(name, value);
                }
            }
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http { url: target.url.clone(), reason: e.to_string() })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| FetchError::Http { url: target.url.clone(), reason: e.to_string() })?;
        let status = response.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
            let redirect = |reason: String| FetchError::Redirect { url: first.clone(), reason };
            let location = location.ok_or_else(|| redirect(format!("{status} without a Location")))?;
            if hop == MAX_REDIRECTS {
                return Err(redirect(format!("more than {MAX_REDIRECTS} redirects")));
            }
            target = target.resolve(location).map_err(redirect)?;
            continue;
        }
        match status {
            StatusCode::OK => {
                let (parts, body) = response.into_parts();
                let bytes = read_body(body, &parts.headers, max_bytes, &target.url).await?;
                return Ok((status, parts.headers, bytes));
            }
            StatusCode::NOT_MODIFIED if conditional.is_some() => return Ok((status, HeaderMap::new(), Vec::new())),
            _ => return Err(FetchError::Status { url: target.url, status }),
        }
    }
    unreachable!("the last hop returns")
}

/// Ends the connection's task when the request is done with, or when the
/// fetch is dropped at its deadline.
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(
    connector: &TlsConnector,
    target: &Target,
    timeout: Duration,
) -> Result<(hyper::client::conn::http1::SendRequest<Empty<Bytes>>, Connection), FetchError> {
    let host = || target.host.clone();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| FetchError::Lookup { host: host(), reason: e.to_string() })?
        .collect();
    let mut last = format!("{} has no address", target.host);
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                tcp = Some(stream);
                break;
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no answer within {timeout:?}"),
        }
    }
    let tcp = tcp.ok_or_else(|| FetchError::Connect { host: host(), reason: last })?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| FetchError::Url(format!("{}: {:?} is not a host name", target.url, target.host)))?;
    let tls = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => return Err(FetchError::Tls { host: host(), reason: format!("no handshake within {timeout:?}") }),
        Ok(Err(e)) => {
            let reason = e.to_string();
            let untrusted = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(|e| {
                matches!(e, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
            });
            return Err(if untrusted {
                FetchError::Untrusted { host: host(), reason }
            } else {
                FetchError::Tls { host: host(), reason }
            });
        }
        Ok(Ok(tls)) => tls,
    };
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| FetchError::Tls { host: host(), reason: e.to_string() })?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "bundle fetch connection");
        }
    });
    Ok((sender, Connection(task)))
}

/// The body, refused as soon as it is known to be larger than `max`: by
/// its Content-Length, or while it streams.
async fn read_body(
    mut body: hyper::body::Incoming,
    headers: &HeaderMap,
    max: usize,
    url: &str,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge { url: url.to_owned(), limit: max };
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(announced.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Http { url: url.to_owned(), reason: e.to_string() })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_are_fetched() {
        let t = Target::parse("https://cdn.example.vn/campaigns/pc-covid.tar?v=2").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("cdn.example.vn", 443, "/campaigns/pc-covid.tar?v=2"));
        let t = Target::parse("https://[::1]:8443/b.tar").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.authority.as_str()), ("::1", 8443, "[::1]:8443"));
        for (url, why) in [
            ("http://cdn.example.vn/b.tar", "http:// is refused"),
            ("ftp://cdn.example.vn/b.tar", "not an https:// URL"),
            ("cdn.example.vn/b.tar", "not an https:// URL"),
            ("https://user:secret@cdn.example.vn/b.tar", "user name or password"),
            ("https://exa mple.vn/", "not an https:// URL"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn redirects_resolve_and_stay_on_https() {
        let here = Target::parse("https://a.example.vn/x/y/b.tar?v=1").unwrap();
        let to = |location: &str| here.resolve(location).map(|t| t.url);
        assert_eq!(to("https://cdn.example.vn/b.tar").unwrap(), "https://cdn.example.vn/b.tar");
        assert_eq!(to("//cdn.example.vn/b.tar").unwrap(), "https://cdn.example.vn/b.tar");
        assert_eq!(to("/z/b.tar").unwrap(), "https://a.example.vn/z/b.tar");
        assert_eq!(to("c.tar").unwrap(), "https://a.example.vn/x/y/c.tar");
        assert!(to("http://cdn.example.vn/b.tar").unwrap_err().contains("http:// is refused"));
        assert!(to("javascript:alert(1)").unwrap_err().contains("not an https URL"));
    }

    #[test]
    fn a_ca_file_must_hold_usable_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(read_ca(&missing).unwrap_err().contains("cannot read PEM certificates"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no PEM here\n").unwrap();
        assert!(read_ca(&empty).unwrap_err().contains("holds no PEM certificate"));
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(read_ca(&junk).unwrap_err().contains("certificate 1 is not usable as a root"));

        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.pem()).unwrap();
        assert_eq!(read_ca(&good).unwrap(), [cert.der().clone()]);
    }

    #[test]
    fn validators_come_from_the_response_and_only_what_it_gave() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"v7\""));
        let v = Validators::of(&headers);
        assert_eq!(v, Validators { etag: Some("\"v7\"".into()), last_modified: None });
        assert!(!v.is_empty());
        assert!(Validators::of(&HeaderMap::new()).is_empty());
    }
}
