//! The response body type and the few response shapes Portico sends.
//!
//! Nearly every body is a complete `Bytes` (pages are pre-rendered), so
//! cloning a page is a reference-count bump. The one exception is a list
//! that grows with the grant table (`/clients`): it is made a piece at a
//! time as the connection takes it, so listing 100,000 grants never holds
//! megabytes of text.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// A response body: whole, or pieces made on demand.
pub struct Body(Kind);

enum Kind {
    /// Taken by the first poll.
    Whole(Option<Bytes>),
    /// Each piece is made when hyper has room for it (it polls the body
    /// only once what it buffered is written), so a slow reader costs one
    /// piece of memory, not the whole answer.
    Pieces(Box<dyn Iterator<Item = Bytes> + Send>),
}

impl Body {
    pub fn whole(bytes: Bytes) -> Body {
        Body(Kind::Whole(Some(bytes).filter(|b| !b.is_empty())))
    }

    pub fn pieces(pieces: impl Iterator<Item = Bytes> + Send + 'static) -> Body {
        Body(Kind::Pieces(Box::new(pieces)))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match &mut self.get_mut().0 {
            Kind::Whole(bytes) => bytes.take(),
            // An empty piece would read as the end of a chunked body.
            Kind::Pieces(pieces) => pieces.find(|p| !p.is_empty()),
        };
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, Kind::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Whole(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Pieces(_) => SizeHint::default(),
        }
    }
}

pub const HTML: &str = "text/html; charset=utf-8";

/// Page headers: nothing from another origin may load, nothing may frame
/// the page, and no captive answer may be cached (the next visit must be
/// judged afresh by its grant).
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut res = Response::new(Body::whole(body));
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
    let mut res = Response::new(Body::whole(Bytes::new()));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", body.into())
}
