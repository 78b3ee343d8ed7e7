//! The response body type and the few response shapes Portico sends.
//!
//! Every body is a complete `Bytes` (pages are pre-rendered), so `Full` is
//! all we need, and cloning a page is a reference-count bump.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

pub type Body = Full<Bytes>;

pub const HTML: &str = "text/html; charset=utf-8";

/// Page headers: nothing from another origin may load, nothing may frame
/// the page, and no captive answer may be cached (the next visit must be
/// judged afresh by its grant).
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A page of the portal, in `lang`.
pub fn page(status: StatusCode, body: Bytes, lang: &str) -> Response<Body> {
    let mut res = response(status, HTML, body);
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(lang) {
        h.insert(header::CONTENT_LANGUAGE, v);
    }
    res
}

/// A redirect to `location` (already validated: it comes from the config or
/// is a fixed path, never from the request).
pub fn redirect(status: StatusCode, location: &str, body: Bytes) -> Response<Body> {
    let mut res = response(status, HTML, body);
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", body.into())
}
