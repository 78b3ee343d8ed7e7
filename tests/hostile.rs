//! Broken and hostile requests each get a clear answer, never a panic, and
//! the next traveller is served: no Host, no User-Agent, HTTP/1.0, unknown
//! methods, TLS bytes on the plain port, invalid UTF-8, forged
//! `X-Forwarded-For`, open-redirect attempts, asset path traversal, two
//! `Host` headers.

mod common;

use std::time::Duration;

use common::TestPortal;
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes on a fresh connection; returns what came back (the
/// server closes after an error, or after a `Connection: close` answer).
async fn raw(portal: &TestPortal, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(portal.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

fn status(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("none")
}

#[tokio::test]
async fn malformed_requests_get_clear_4xx_and_service_continues() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    let cases: &[(&str, &[u8], &str)] = &[
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "400"),
        ("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", "200"),
        ("splash without User-Agent", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "200"),
        ("unknown method on the portal", b"BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "405"),
        ("unknown method to a foreign host", b"BREW /pot HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", "302"),
        ("TLS ClientHello on the plain port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "400"),
        ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n", "400"),
        (
            "invalid UTF-8 in a header",
            b"GET /?lang=en HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: \xff\xfe\r\nUser-Agent: \xc3\x28\r\nConnection: close\r\n\r\n",
            "200",
        ),
        ("invalid UTF-8 in the query", b"GET /?lang=%ff%fe\xff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "400"),
        ("a path that is not a path", b"GET http://[::1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "400"),
        // RFC 9112 §3.2: more than one Host is 400 (issue 8).
        (
            "two Host headers",
            b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            "a Host that disagrees with the absolute request-target",
            b"GET http://example.com/generate_204 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            "a Host that agrees with the absolute request-target",
            b"GET http://Example.com/ HTTP/1.1\r\nHost: example.com:80\r\nConnection: close\r\n\r\n",
            "302",
        ),
        ("a Host that is not a host", b"GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n", "400"),
    ];
    for (what, bytes, want) in cases {
        let answer = raw(&portal, bytes).await;
        assert_eq!(status(&answer), *want, "{what}: {answer:.200}");
    }
    assert_eq!(portal.page("/", &[]).await.status, StatusCode::OK, "still serving");
    portal.stop().await;
}

#[tokio::test]
async fn nothing_from_the_request_becomes_a_redirect_to_another_site() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    for (host, path) in [
        ("evil.example", "//evil.example/"),
        ("evil.example", "/?next=https://evil.example/"),
        ("connectivitycheck.gstatic.com", "/generate_204?url=https://evil.example"),
        ("127.0.0.1\r\nLocation: https://evil.example", "/"),
    ] {
        let answer =
            raw(&portal, format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await;
        let location = answer.lines().find_map(|l| l.strip_prefix("location: ")).unwrap_or("");
        assert!(!answer.to_ascii_lowercase().contains("location: https://evil"), "{host}{path}: {answer:.300}");
        assert!(location.is_empty() || location == portal.url(), "{host}{path}: {location}");
    }
    portal.stop().await;
}

#[tokio::test]
async fn assets_never_escape_their_set() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    for path in [
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/..%2fCargo.toml",
        "/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/assets/..\\Cargo.toml",
        "/assets/portico.css/",
        "/assets/portico.css%00",
        "/assets/campaign/..%2fcampaign.toml",
        "/assets/campaign/%2e%2e%5ccampaign.toml",
    ] {
        let answer =
            raw(&portal, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes())
                .await;
        assert!(matches!(status(&answer), "404" | "400"), "{path}: {answer:.200}");
        assert!(!answer.contains("[package]") && !answer.contains("root:"), "{path}");
    }
    portal.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let forged = [("x-forwarded-for", "10.9.9.9"), ("x-real-ip", "10.9.9.9"), ("forwarded", "for=10.9.9.9")];
    let r = common::send(portal.addr, "POST", &host, "/", &forged, "lang=vi".into()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let clients = common::send(portal.admin, "GET", "127.0.0.1", "/clients", &[], Default::default()).await.text();
    assert!(clients.contains("\"127.0.0.1\"") && !clients.contains("10.9.9.9"), "the peer was granted: {clients}");
    portal.stop().await;
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_names_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let limits = format!("{}\ntrusted_proxies = [\"127.0.0.1\"]", common::NO_RATE_LIMITS);
    let portal = TestPortal::start_with_limits(dir.path(), "", &limits).await;
    let host = format!("127.0.0.1:{}", portal.addr.port());
    // The first entry is the client's own claim; the proxy appended the last.
    let headers = [("x-forwarded-for", "10.6.6.6, 10.0.0.42")];
    let r = common::send(portal.addr, "POST", &host, "/", &headers, "lang=vi".into()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let clients = common::send(portal.admin, "GET", "127.0.0.1", "/clients", &[], Default::default()).await.text();
    assert!(clients.contains("\"10.0.0.42\"") && !clients.contains("10.6.6.6"), "{clients}");
    portal.stop().await;
}
