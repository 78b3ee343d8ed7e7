//! The operator's page (`GET /` on the admin listener) with a real Portico:
//! two devices load the splash, one taps *Connect*, and the page says so
//! in the language asked for.

mod common;

use std::net::IpAddr;

use bytes::Bytes;
use common::{Form, Reply, TestPortal};
use hyper::StatusCode;

async fn operator_page(portal: &TestPortal, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    common::send(portal.admin, method, "127.0.0.1", path, headers, Bytes::new()).await
}

/// The number the page shows under `label`.
fn figure(html: &str, label: &str) -> u64 {
    let after = html.split(&format!("<dt>{label}</dt>")).nth(1).unwrap_or_else(|| panic!("no {label:?} in {html}"));
    let number = after.strip_prefix("<dd>").and_then(|dd| dd.split("</dd>").next());
    number.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no number under {label:?} in {html}"))
}

#[tokio::test]
async fn the_operator_page_counts_devices_in_vietnamese_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let portal = TestPortal::start(dir.path()).await;
    let host = format!("127.0.0.1:{}", portal.addr.port());
    let (first, second): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());

    let before = operator_page(&portal, "GET", "/", &[("accept-language", "vi")]).await.text();
    assert_eq!(figure(&before, "Thiết bị đã xem thông báo"), 0);
    assert!(before.contains("Chưa có số liệu."), "an empty chart says so");

    let mut splash = String::new();
    for device in [first, second] {
        let reply = portal.get_from(device, &host, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        splash = reply.text();
    }
    let form = Form::parse(&splash).expect("the splash has a post form");
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let accepted =
        common::send_from(second, portal.addr, "POST", &host, &form.action, &headers, Bytes::from(form.body())).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.text());

    let vi = operator_page(&portal, "GET", "/", &[("accept-language", "vi-VN,vi;q=0.9,en;q=0.8")]).await;
    assert_eq!(vi.status, StatusCode::OK);
    assert_eq!(vi.header("cache-control"), "no-store");
    assert_eq!(vi.header("content-language"), "vi");
    let vi = vi.text();
    assert!(vi.contains("<html lang=\"vi\">"), "{vi}");
    assert_eq!(figure(&vi, "Thiết bị đã xem thông báo"), 2);
    assert_eq!(figure(&vi, "Thiết bị đã kết nối"), 1);
    assert_eq!(figure(&vi, "Thiết bị đang trực tuyến"), 1);
    assert_eq!(figure(&vi, "Lượt xem trang"), 2);
    assert!(vi.contains("Giờ đông nhất:") && !vi.contains("Chưa có số liệu."), "the charts have bars");
    assert!(vi.contains("Ga Thử Nghiệm"));

    for headers in [&[][..], &[("accept-language", "fr-FR, en;q=0.5")][..]] {
        let en = operator_page(&portal, "GET", "/", headers).await.text();
        assert!(en.contains("<html lang=\"en\">"), "{en}");
        assert_eq!(figure(&en, "Devices shown the notice"), 2);
        assert_eq!(figure(&en, "Devices connected"), 1);
        assert_eq!(figure(&en, "Devices online now"), 1);
        assert_eq!(figure(&en, "Returning devices"), 0);
    }
    let asked = operator_page(&portal, "GET", "/?lang=vi", &[("accept-language", "en")]).await.text();
    assert!(asked.contains("<html lang=\"vi\">"), "?lang= overrides the header");

    let head = operator_page(&portal, "HEAD", "/", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    portal.stop().await;
}
