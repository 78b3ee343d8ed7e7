//! The portal as a phone sees it: probes, the splash, the accept flow, the
//! RFC 8908 API, languages, and a restart that must keep the grant. Each
//! test runs a whole Portico in-process on pre-bound loopback ports.

mod common;

use common::{Form, TestPortal};
use hyper::StatusCode;

/// DESIGN.md's probe table, written out here independently of the code's
/// own table: `(host, path, status, exact body)` of the "online" answer.
const PROBES: &[(&str, &str, u16, &str)] = &[
    ("captive.apple.com", "/hotspot-detect.html", 200, APPLE),
    ("www.apple.com", "/library/test/success.html", 200, APPLE),
    ("connectivitycheck.gstatic.com", "/generate_204", 204, ""),
    ("www.google.com", "/gen_204", 204, ""),
    ("play.googleapis.com", "/generate_204", 204, ""),
    ("clients3.google.com", "/generate_204", 204, ""),
    ("connectivitycheck.android.com", "/generate_204", 204, ""),
    ("connect.rom.miui.com", "/generate_204", 204, ""),
    ("connectivitycheck.platform.hicloud.com", "/generate_204", 204, ""),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, "Microsoft Connect Test"),
    ("ipv6.msftconnecttest.com", "/connecttest.txt", 200, "Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt", 200, "Microsoft NCSI"),
    (
        "detectportal.firefox.com",
        "/canonical.html",
        200,
        "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
    ),
    ("detectportal.firefox.com", "/success.txt", 200, "success\n"),
    ("www.gstatic.com", "/generate_204", 204, ""),
    ("nmcheck.gnome.org", "/check_network_status.txt", 200, "NetworkManager is online\n"),
    ("connectivity-check.ubuntu.com", "/", 204, ""),
    ("fedoraproject.org", "/static/hotspot.txt", 200, "OK\n"),
];
const APPLE: &str = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>";
const KINDLE_GUID: &str = "81ce4465-7167-4dcb-835b-dcc9e44c112a";

fn state() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn every_probe_is_sent_to_the_portal_before_accept_and_told_online_after() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let kindle = ("spectrum.s3.amazonaws.com", "/kindle-wifi/wifistub.html");

    for (host, path, _, _) in PROBES.iter().copied().chain([(kindle.0, kindle.1, 0, "")]) {
        let r = portal.get(host, path).await;
        assert_eq!(r.status, StatusCode::FOUND, "{host}{path} before accept");
        assert_eq!(r.header("location"), portal.url(), "{host}{path}");
        assert_eq!(r.header("cache-control"), "no-store");
    }
    // Port in the Host header and upper case do not hide a probe.
    let r = portal.get("ConnectivityCheck.gstatic.com:80", "/generate_204").await;
    assert_eq!(r.status, StatusCode::FOUND);

    let accepted = portal.accept().await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);

    for (host, path, status, body) in PROBES {
        let r = portal.get(host, path).await;
        assert_eq!(r.status.as_u16(), *status, "{host}{path} after accept");
        assert_eq!(r.text(), *body, "{host}{path} body must match byte for byte");
    }
    let r = portal.get(kindle.0, kindle.1).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains(KINDLE_GUID));
    // Apple answers Success on any path of captive.apple.com.
    assert_eq!(portal.get("captive.apple.com", "/x/y/z.html").await.text(), APPLE);

    // A page the phone wanted that is not a probe goes to /welcome.
    let r = portal.get("example.com", "/news").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), format!("{}welcome", portal.url()));
    portal.stop().await;
}

#[tokio::test]
async fn a_probe_is_never_answered_511_and_user_agent_does_not_matter() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    // Android probes with a desktop Chrome user agent.
    let chrome =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    for ua in [chrome, "Dalvik/2.1.0", ""] {
        let headers = [("user-agent", ua)];
        let r = common::send(
            portal.addr,
            "GET",
            "connectivitycheck.gstatic.com",
            "/generate_204",
            &headers,
            Default::default(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FOUND, "ua {ua:?}");
    }
    portal.stop().await;
}

#[tokio::test]
async fn accept_flow_end_to_end() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let splash = portal.page("/?lang=en", &[]).await;
    assert_eq!(splash.status, StatusCode::OK);
    assert_eq!(splash.header("content-type"), "text/html; charset=utf-8");
    let html = splash.text();
    assert!(html.contains("Ga Thử Nghiệm"), "the venue's name is on the page");
    let form = Form::parse(&html).expect("a post form");
    assert_eq!(form.fields, vec![("lang".to_string(), "en".to_string())]);

    let host = format!("127.0.0.1:{}", portal.addr.port());
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let r = common::send(portal.addr, "POST", &host, &form.action, &headers, form.body().into()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/welcome?lang=en");

    let welcome = portal.page("/welcome?lang=en", &[]).await;
    assert_eq!(welcome.status, StatusCode::OK);
    let html = welcome.text();
    assert!(html.contains("You are online"));
    // Online by now: the store buttons go through the counted redirects.
    assert!(html.contains("href=\"/go/google-play?lang=en\""), "{html}");
    assert!(html.contains("href=\"/go/app-store?lang=en\""), "{html}");
    let store = portal.page("/go/google-play?lang=en", &[]).await;
    assert_eq!(store.header("location"), "https://play.google.com/store/apps/details?id=com.mic.bluezone");
    assert!(html.contains("<svg"), "the QR code is repeated");

    // A second tap extends the session rather than failing.
    let again = portal.accept().await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);

    // The form cannot name someone else: nothing in it is read as identity.
    let other =
        common::send(portal.addr, "POST", &host, "/", &headers, "lang=vi&ip=10.0.0.99&mac=02:00:00:00:00:99".into())
            .await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
    let list = portal.page("/api/captive", &[]).await.text();
    assert!(list.contains("\"captive\":false"));
    portal.stop().await;
}

#[tokio::test]
async fn captive_api_before_and_after_accept() {
    let dir = state();
    let portal = TestPortal::start_with(dir.path(), "session = \"2h\"").await;
    let before = portal.page("/api/captive", &[]).await;
    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(before.header("content-type"), "application/captive+json");
    assert_eq!(before.header("cache-control"), "private");
    assert!(before.body.len() <= 4096);
    let json: serde_json::Value = serde_json::from_slice(&before.body).unwrap();
    assert_eq!(json["captive"], true);
    assert_eq!(json["user-portal-url"], portal.url());
    assert!(json["venue-info-url"].as_str().unwrap().starts_with(&portal.url()));
    assert_eq!(json["can-extend-session"], true);
    assert!(json.get("seconds-remaining").is_none(), "only once granted");

    portal.accept().await;
    let after: serde_json::Value = serde_json::from_slice(&portal.page("/api/captive", &[]).await.body).unwrap();
    assert_eq!(after["captive"], false);
    let left = after["seconds-remaining"].as_u64().unwrap();
    assert!((7200 - 60..=7200).contains(&left), "seconds-remaining {left}");
    portal.stop().await;
}

#[tokio::test]
async fn language_follows_query_then_accept_language_then_default() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let lang_of = |html: String| html.split("<html lang=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    let r = portal.page("/", &[]).await;
    assert_eq!(lang_of(r.text()), "vi", "Vietnamese is the default");
    assert!(r.text().contains("Bảo vệ mình, bảo vệ cộng đồng"));
    assert_eq!(r.header("content-language"), "vi");

    let en = portal.page("/?lang=en", &[]).await.text();
    assert_eq!(lang_of(en.clone()), "en");
    assert!(en.contains("Protect yourself, protect the community"));

    type Case = (&'static str, &'static [(&'static str, &'static str)], &'static str);
    let cases: &[Case] = &[
        ("/", &[("accept-language", "en-AU,en;q=0.9")], "en"),
        ("/", &[("accept-language", "de;q=0.9, en;q=0.5")], "en"),
        ("/", &[("accept-language", "fr;q=0.9, en;q=0.5")], "fr"),
        ("/", &[("accept-language", "zh-CN")], "zh-Hans"),
        ("/", &[("accept-language", "de-CH, es")], "vi"),
        ("/", &[("accept-language", "en;q=0.3, vi;q=0.8")], "vi"),
        ("/?lang=vi", &[("accept-language", "en")], "vi"),
        ("/?lang=xx", &[("accept-language", "en")], "en"),
        ("/?lang=xx", &[], "vi"),
        ("/", &[("accept-language", "zh-TW")], "zh-Hant"),
    ];
    for (path, headers, want) in cases {
        assert_eq!(lang_of(portal.page(path, headers).await.text()), *want, "{path} {headers:?}");
    }

    // The switcher offers every language in its own name.
    let vi = portal.page("/", &[]).await.text();
    assert!(vi.contains(">English</a>") && vi.contains(">Tiếng Việt</a>"));
    portal.stop().await;
}

#[tokio::test]
async fn the_visitors_platform_comes_first() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let iphone =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
    let android =
        "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
    let first_store = |html: &str| {
        let play = html.find("play.google.com").unwrap();
        let apple = html.find("apps.apple.com").unwrap();
        if play < apple { "play" } else { "apple" }
    };
    let ios_page = portal.page("/?lang=en", &[("user-agent", iphone)]).await.text();
    let android_page = portal.page("/?lang=en", &[("user-agent", android)]).await.text();
    assert_eq!(first_store(&ios_page), "apple");
    assert_eq!(first_store(&android_page), "play");
    portal.stop().await;
}

#[tokio::test]
async fn splash_is_small_self_contained_and_needs_no_script() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let css = portal.page("/assets/portico.css", &[]).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    for lang in ["vi", "en"] {
        let html = portal.page(&format!("/?lang={lang}"), &[]).await.text();
        let logo = portal.page("/assets/campaign/logo.svg", &[]).await.body.len();
        let total = html.len() + css.body.len() + logo;
        assert!(total <= 30 * 1024, "{lang}: splash + stylesheet is {total} bytes");
        assert!(!html.contains("<script"), "{lang}: no JavaScript");
        for src in html.split(" src=\"").skip(1) {
            assert!(src.starts_with("/assets/"), "{lang}: every resource is our own: {src}");
        }
        assert!(html.contains("href=\"/assets/portico.css\""), "{lang}: the one stylesheet is our own");
        assert!(!html.contains("href=\"http://"), "{lang}: every link is https");
    }
    portal.stop().await;
}

#[tokio::test]
async fn unknown_pages_and_methods_get_clear_answers() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let r = portal.page("/nope", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("<a href=\"/?lang=vi\""), "the 404 leads back to the start");
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let r = common::send(portal.addr, "DELETE", &host, "/", &[], Default::default()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), "GET, HEAD, POST");
    let r = common::send(portal.addr, "POST", &host, "/", &[], vec![b'a'; 64 * 1024].into()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = portal.page("/api/captive", &[]).await;
    assert!(r.text().contains("\"captive\":true"), "an oversized form grants nothing");
    portal.stop().await;
}

#[tokio::test]
async fn a_restart_with_the_same_state_keeps_the_grant() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER);
    portal.stop().await;

    let portal = TestPortal::start(dir.path()).await;
    let api: serde_json::Value = serde_json::from_slice(&portal.page("/api/captive", &[]).await.body).unwrap();
    assert_eq!(api["captive"], false, "the grant survived the restart");
    let r = portal.get("connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    portal.stop().await;
}

#[tokio::test]
async fn admin_serves_health_metrics_and_status() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    portal.page("/", &[]).await;
    portal.get("connectivitycheck.gstatic.com", "/generate_204").await;
    portal.accept().await;
    let admin = |path: &'static str| common::send(portal.admin, "GET", "127.0.0.1", path, &[], Default::default());
    let health = admin("/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (StatusCode::OK, "ok\n"));
    let metrics = admin("/metrics").await.text();
    assert!(metrics.contains("portico_grants_active 1"), "{metrics}");
    assert!(metrics.contains("outcome=\"probe_redirect\"} 1"), "{metrics}");
    assert!(metrics.contains("portico_accepts_total{result=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("portico_splash_views_total{campaign=\"Bluezone\",lang=\"vi\"} 2"), "{metrics}");
    let status = admin("/").await.text();
    assert!(status.contains("Devices online now"));
    portal.stop().await;
}

#[tokio::test]
async fn operator_lists_and_revokes_clients_through_admin() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    portal.accept().await;
    let admin = |method: &'static str, path: &'static str| {
        common::send(portal.admin, method, "127.0.0.1", path, &[], Default::default())
    };
    let list: serde_json::Value = serde_json::from_slice(&admin("GET", "/clients").await.body).unwrap();
    assert_eq!(list[0]["ip"], "127.0.0.1", "{list}");
    assert!(list[0]["seconds_remaining"].as_u64().unwrap() > 12 * 3600 - 60);

    assert_eq!(admin("POST", "/clients/revoke?target=nonsense").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(admin("POST", "/clients/revoke?target=02:00:00:00:00:99").await.status, StatusCode::NOT_FOUND);
    let revoked = admin("POST", "/clients/revoke?target=127.0.0.1").await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    let api = portal.page("/api/captive", &[]).await.text();
    assert!(api.contains("\"captive\":true"), "held again at once: {api}");
    let r = portal.get("connectivitycheck.gstatic.com", "/generate_204").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(admin("POST", "/clients/revoke?target=127.0.0.1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin("GET", "/clients").await.text().trim(), "[]");
    portal.stop().await;
}

const LANGS: [&str; 8] = ["vi", "en", "zh-Hans", "zh-Hant", "ko", "ja", "ru", "fr"];

#[tokio::test]
async fn signage_cycles_through_every_language_without_script() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    for (i, lang) in LANGS.iter().enumerate() {
        let r = portal.page(&format!("/signage?lang={lang}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        let html = r.text();
        assert!(html.contains(&format!("<html lang=\"{lang}\"")), "{lang}");
        // A panel per language, starting with the one asked for.
        let panels: Vec<&str> =
            html.split("class=\"board-panel\" lang=\"").skip(1).map(|p| p.split('"').next().unwrap()).collect();
        let expected: Vec<&str> = LANGS[i..].iter().chain(&LANGS[..i]).copied().collect();
        assert_eq!(panels, expected, "{lang}");
        assert!(!html.contains("<script") && html.contains("<svg"), "{lang}: no script, a QR code");
        assert!(html.contains("/assets/boards.css") && !html.contains("/assets/portico.css"));
        assert!(html.contains("http-equiv=\"refresh\" content=\"86400\""), "{lang}: a daily reload in the page");
        assert_eq!(r.header("refresh"), "96", "{lang}: the board loads the page again after a whole cycle");
        assert!(html.contains("/assets/signage-cycle-8.css"), "{lang}");
    }
    let cycle = portal.page("/assets/signage-cycle-8.css", &[]).await.text();
    assert!(cycle.contains("animation:board-turn 96s"), "8 languages × 12 s: {cycle}");
    assert!(cycle.contains(".board-panel:nth-child(8){animation-delay:84s}"), "{cycle}");
    // A board that cached a page of another count gets that count's timing.
    let two = portal.page("/assets/signage-cycle-2.css", &[]).await.text();
    assert!(two.contains("animation:board-turn 24s"), "{two}");
    assert_eq!(portal.page("/assets/signage-cycle-0.css", &[]).await.status, StatusCode::NOT_FOUND);
    let css = portal.page("/assets/boards.css", &[]).await;
    assert!(css.text().contains("@page{size:A4"), "the poster prints on A4");
    portal.stop().await;
}

#[tokio::test]
async fn poster_carries_the_short_line_in_every_language() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let html = portal.page("/poster?lang=fr", &[]).await.text();
    assert!(html.contains("<html lang=\"fr\""));
    assert!(html.contains("Ga Thử Nghiệm"), "the venue's name");
    assert!(html.contains("www.bluezone.gov.vn"), "the website, written out");
    for lang in LANGS {
        assert!(html.contains(&format!("<li lang=\"{lang}\">")), "{lang}");
    }
    assert!(html.contains("Cài Bluezone: quét mã") && html.contains("Install Bluezone: scan the code"));
    portal.stop().await;
}

#[tokio::test]
async fn every_language_is_served_and_fits_the_budget() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let css = portal.page("/assets/portico.css", &[]).await.body.len();
    let logo = portal.page("/assets/campaign/logo.svg", &[]).await;
    assert_eq!(logo.status, StatusCode::OK);
    assert_eq!(logo.header("content-type"), "image/svg+xml");
    // Opened on its own, the image is a sandboxed document that loads nothing.
    assert_eq!(logo.header("content-security-policy"), "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    assert_eq!(logo.header("x-content-type-options"), "nosniff");
    for lang in LANGS {
        let splash = portal.page(&format!("/?lang={lang}"), &[]).await;
        assert_eq!(splash.header("content-language"), lang);
        let total = splash.body.len() + css + logo.body.len();
        assert!(total <= 30 * 1024, "{lang}: {total} bytes");
        let switcher = splash.text();
        // The logo's URL names its bytes: a cached logo of another campaign is never shown.
        let version = format!("{:08x}", crc32fast::hash(&logo.body));
        assert!(switcher.contains(&format!("src=\"/assets/campaign/logo.svg?v={version}\"")), "{lang}");
        for other in LANGS {
            assert!(switcher.contains(&format!("href=\"/?lang={other}\"")), "{lang} offers {other}");
        }
    }
    // Only declared campaign files are served; nothing escapes the set.
    for path in ["/assets/campaign/../campaign.toml", "/assets/campaign/%2e%2e/campaign.toml", "/assets/campaign/"] {
        assert_eq!(portal.page(path, &[]).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    portal.stop().await;
}

/// Reads one connection until the server closes it, or 5 s; returns what
/// came back and whether the server closed it.
async fn exchange_raw(portal: &TestPortal, request: &str) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(portal.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut buf)).await.is_ok();
    (String::from_utf8_lossy(&buf).into_owned(), closed)
}

/// Issue 8: a browser that reused a connection the firewall redirected
/// before Connect kept landing on the portal after it. Every answer to a
/// foreign host (the redirect, a probe's success, the welcome redirect) is
/// the last on its connection; the portal's own pages keep keep-alive.
#[tokio::test]
async fn answers_to_foreign_hosts_close_their_connection_and_portal_pages_keep_it() {
    let dir = state();
    let portal = TestPortal::start(dir.path()).await;
    let probe = "GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n";
    let site = "GET /news HTTP/1.1\r\nHost: example.com\r\n\r\n";

    let (answer, closed) = exchange_raw(&portal, probe).await;
    assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(closed, "the redirect before Connect left the connection open");

    assert_eq!(portal.accept().await.status, StatusCode::SEE_OTHER);
    for (request, status) in [(probe, "204"), (site, "302")] {
        let (answer, closed) = exchange_raw(&portal, request).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(closed, "the answer {status} after Connect left the connection open");
    }

    // Two requests for the portal's own pages on one connection, both
    // answered, and the connection still open after them.
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let two = format!("GET /welcome HTTP/1.1\r\nHost: {host}\r\n\r\nGET /api/captive HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let (answer, closed) = exchange_raw(&portal, &two).await;
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    assert!(!closed, "the portal's own pages closed a keep-alive connection");
    portal.stop().await;
}
