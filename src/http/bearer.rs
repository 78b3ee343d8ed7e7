//! The admin listener's door (issue 12): with `admin.token_file` set, the
//! control endpoints (`/clients`, revoke, trust, untrust) want
//! `Authorization: Bearer <token>`, on loopback or not. Without a token
//! the config allows only a loopback listener, and the door is open to
//! this machine alone, as before.
//!
//! What must stay true: a request without the right token learns nothing
//! but 401 (or 429 once its address has spent its attempts, before any
//! comparison), and the numbers (`/metrics`, `/healthz`, the status page)
//! never ask for it, so a flood of guesses leaves the supervisor and
//! Prometheus their answers.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::{Conn, Portal};

/// How a request got past the door.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// It carried the configured token.
    Token,
    /// No token is configured: the listener is on loopback.
    NoTokenConfigured,
}

/// Why a request was turned away at the door.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No token, or the wrong one (`given`: whether one was offered).
    Unauthorized { given: bool },
    /// The address spent its attempts; it may come back after this long.
    TooManyAttempts(std::time::Duration),
}

impl Refused {
    /// The label it is counted under in `portico_rejected_total`.
    pub fn reason(self) -> super::Rejection {
        match self {
            Refused::Unauthorized { .. } => super::Rejection::AdminToken,
            Refused::TooManyAttempts(_) => super::Rejection::AdminAttempts,
        }
    }

    pub fn response(self) -> Response<Body> {
        match self {
            Refused::Unauthorized { given } => unauthorized(given),
            Refused::TooManyAttempts(wait) => super::router::too_many_requests(wait),
        }
    }
}

/// Lets the request through, or says why not: no or the wrong token, or
/// its address out of attempts.
pub fn admit(portal: &Portal, conn: &Conn, headers: &HeaderMap) -> Result<Admitted, Refused> {
    let live = portal.live.load();
    let Some(token) = &live.admin_token else {
        return Ok(Admitted::NoTokenConfigured);
    };
    if let Err(wait) = portal.guard.admit_control(conn.peer.ip().to_canonical()) {
        tracing::debug!(peer = %conn.peer, "admin token attempts over budget");
        return Err(Refused::TooManyAttempts(wait));
    }
    match headers.get(header::AUTHORIZATION).and_then(|v| bearer(v.as_bytes())) {
        Some(offered) if token.matches(offered) => Ok(Admitted::Token),
        offered => {
            tracing::debug!(peer = %conn.peer, given = offered.is_some(), "admin request without the right token");
            Err(Refused::Unauthorized { given: offered.is_some() })
        }
    }
}

/// The credentials of `Bearer <token>` (the scheme in any case, RFC 9110
/// section 11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = value.split_at(space);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| token.trim_ascii()).filter(|t| !t.is_empty())
}

/// 401 with the challenge of RFC 6750; `invalid_token` only when one was
/// given (section 3.1: a request without credentials gets no error code).
fn unauthorized(given: bool) -> Response<Body> {
    let mut res = body::text(
        StatusCode::UNAUTHORIZED,
        "give the admin token (admin.token_file) as Authorization: Bearer <token>\n",
    );
    let challenge =
        if given { r#"Bearer realm="portico", error="invalid_token""# } else { r#"Bearer realm="portico""# };
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    res
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_nothing_else_is() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic YWJjOmRlZg=="), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearerabc"), None);
    }
}
