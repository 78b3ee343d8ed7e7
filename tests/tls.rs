//! The TLS listener: a real rustls client with a generated certificate gets
//! the pages and the RFC 8908 API over HTTP/2 and HTTP/1.1 by ALPN, and a
//! client that is not speaking TLS does not disturb anyone else.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::TestPortal;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

const HOST: &str = "portal.test";

/// A Portico whose `public_url` is https, with a `[tls]` listener, and a
/// client that trusts its certificate.
struct Tls {
    portal: TestPortal,
    /// The TLS listener; the portal's plain one is `portal.addr`.
    addr: std::net::SocketAddr,
    connector: TlsConnector,
    /// A second certificate for the same name, for the renewal test.
    renewed: rcgen::CertifiedKey<rcgen::KeyPair>,
    dir: std::path::PathBuf,
}

impl Tls {
    async fn connect(&self, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut connector = self.connector.clone();
        let mut config = (*connector.config().clone()).clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        connector = TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        connector.connect(ServerName::try_from(HOST).unwrap(), tcp).await.unwrap()
    }

    async fn stop(self) {
        self.portal.stop().await;
    }
}

async fn start(dir: &Path) -> Tls {
    start_with(dir, "").await
}

/// With extra `[limits]` lines.
async fn start_with(dir: &Path, limits: &str) -> Tls {
    let first = common::certificate(HOST, None);
    let renewed = common::certificate(HOST, None);
    let (cert, key) = common::write_certificate(dir, &first);
    let portal = TestPortal::builder(&dir.join("state"))
        .venue("name = \"TLS\"")
        .portal("")
        .public_url(&format!("https://{HOST}/"))
        .tls(&cert, &key)
        .limits(&format!("per_client_rps = 0\n{limits}"))
        .start()
        .await;

    let mut roots = RootCertStore::empty();
    for cert in [&first, &renewed] {
        roots.add(CertificateDer::from(cert.cert.der().to_vec())).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = portal.tls_addr.expect("a TLS listener");
    Tls { portal, addr, connector: TlsConnector::from(Arc::new(config)), renewed, dir: dir.to_owned() }
}

#[tokio::test]
async fn pages_and_api_over_h2_and_http1() {
    let dir = tempfile::tempdir().unwrap();
    let tls = start(dir.path()).await;

    // HTTP/2, negotiated by ALPN.
    let stream = tls.connect(b"h2").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("https://{HOST}/api/captive")).body(Empty::<Bytes>::new()).unwrap();
    let res = h2.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/captive+json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["user-portal-url"], format!("https://{HOST}/"));

    // HTTP/1.1 over TLS, and the splash.
    let stream = tls.connect(b"http/1.1").await;
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("/").header("host", HOST).body(Empty::<Bytes>::new()).unwrap();
    let res = h1.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none(), "no HSTS on the portal host");
    let html = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("Bluezone"));

    // TLS, and so HTTP/2, carries only the portal's own host (issue 8): a
    // foreign host is misdirected there, never answered as a probe.
    let req = Request::get("https://connectivitycheck.gstatic.com/generate_204").body(Empty::<Bytes>::new()).unwrap();
    assert_eq!(h2.send_request(req).await.unwrap().status(), 421);
    let req = Request::get("/generate_204")
        .header("host", "connectivitycheck.gstatic.com")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(h1.send_request(req).await.unwrap().status(), 421);

    tls.stop().await;
}

#[tokio::test]
async fn plain_text_on_the_tls_port_is_dropped_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let tls = start(dir.path()).await;
    let mut plain = TcpStream::connect(tls.addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: portal.test\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    // The server closes (possibly after a TLS alert); it must not hang.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), plain.read_to_end(&mut buf)).await.unwrap();
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));

    let stream = tls.connect(b"http/1.1").await;
    assert!(stream.get_ref().1.alpn_protocol() == Some(&b"http/1.1"[..]));
    tls.stop().await;
}

/// A plain-http request, as raw text, to `addr`.
async fn plain(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn plain_http_pages_move_to_https_but_probes_keep_their_plain_302() {
    let dir = tempfile::tempdir().unwrap();
    let tls = start(dir.path()).await;
    let page =
        plain(tls.portal.addr, &format!("GET /welcome?lang=en HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"))
            .await;
    assert!(page.starts_with("HTTP/1.1 302"), "{page}");
    assert!(page.contains(&format!("location: https://{HOST}/welcome?lang=en\r\n")), "{page}");
    assert!(!page.to_ascii_lowercase().contains("strict-transport-security"));

    let probe = plain(
        tls.portal.addr,
        "GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(probe.starts_with("HTTP/1.1 302") && probe.contains(&format!("location: https://{HOST}/\r\n")), "{probe}");

    let accept = plain(
        tls.portal.addr,
        &format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 7\r\nConnection: close\r\n\r\nlang=en"),
    )
    .await;
    assert!(accept.starts_with("HTTP/1.1 303"), "the accept is taken over plain http too: {accept}");
    tls.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_picked_up_on_reload_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let tls = start(dir.path()).await;
    let presented = |stream: &tokio_rustls::client::TlsStream<TcpStream>| {
        stream.get_ref().1.peer_certificates().unwrap()[0].as_ref().to_vec()
    };
    let before = tls.connect(b"http/1.1").await;
    let (mut open, conn) = hyper::client::conn::http1::handshake(TokioIo::new(before)).await.unwrap();
    tokio::spawn(conn);

    common::write_certificate(&tls.dir, &tls.renewed);
    tls.portal.reload().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let fresh = tls.connect(b"http/1.1").await;
        if presented(&fresh) == tls.renewed.cert.der().to_vec() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the renewed certificate was never presented");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The connection opened before the renewal still works.
    let req = Request::get("/api/captive").header("host", HOST).body(Empty::<Bytes>::new()).unwrap();
    assert_eq!(open.send_request(req).await.unwrap().status(), 200);
    tls.stop().await;
}

#[tokio::test]
async fn a_client_silent_after_the_handshake_is_hung_up_on() {
    let dir = tempfile::tempdir().unwrap();
    let tls = start_with(dir.path(), "header_read_timeout = \"1s\"").await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut silent = tls.connect(alpn).await;
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        // HTTP/2 sends its SETTINGS and pings; HTTP/1.1 sends nothing. Both
        // must end with the server closing, long before this deadline.
        let read = tokio::time::timeout(std::time::Duration::from_secs(8), silent.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "{}: still open after {:?}", String::from_utf8_lossy(alpn), started.elapsed());
    }
    tls.stop().await;
}
