//! The alert's endpoints on the admin listener, behind the same door as
//! the other changes (see `bearer`): `GET /alert` (the alert in force, as
//! JSON, or `null`), `POST /alert` with `{"notice": "<the notice file>",
//! "open_gate": bool}`, and `POST /alert/clear`. What `portico alert`
//! calls.
//!
//! A change is rendered first (nothing changes if that fails), written to
//! disk second (so a restart shows it; a disk that refuses is a 503 and
//! nothing changes), and swapped in last: every page at once, as a reload
//! does, and the firewall's open gate with it.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::Portal;
use super::body::{self, Body};
use crate::alert::{self, Alert, AlertJson};

/// `GET /alert`.
pub fn show(portal: &Portal) -> Response<Body> {
    let live = portal.live.load();
    let json = live.alert.as_ref().map(Alert::to_json);
    let mut bytes = serde_json::to_vec_pretty(&json).unwrap_or_default();
    bytes.push(b'\n');
    body::response(StatusCode::OK, "application/json", Bytes::from(bytes))
}

/// `POST /alert`.
pub async fn set(portal: &Portal, req: Request<Incoming>) -> Response<Body> {
    // The notice, escaped as JSON, and the flag: at most about twice the file.
    let limit = 2 * alert::MAX_NOTICE_BYTES + 1024;
    let length = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match length {
        None => return body::text(StatusCode::LENGTH_REQUIRED, "give the JSON body with its Content-Length\n"),
        Some(n) if n > limit => return body::text(StatusCode::PAYLOAD_TOO_LARGE, "the notice is too long\n"),
        Some(_) => {}
    }
    let bytes = match http_body_util::Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return body::text(StatusCode::BAD_REQUEST, "the body could not be read\n"),
    };
    let json: AlertJson = match serde_json::from_slice(&bytes) {
        Ok(json) => json,
        Err(e) => {
            return body::text(StatusCode::BAD_REQUEST, format!("give {{\"notice\": …, \"open_gate\": …}}: {e}\n"));
        }
    };
    let asked = AlertJson { since: None, ..json };
    match Alert::from_json(asked, SystemTime::now()) {
        Ok(alert) => apply(portal, Some(alert)).await,
        Err(problems) => {
            body::text(StatusCode::BAD_REQUEST, problems.iter().map(|p| format!("notice: {p}\n")).collect::<String>())
        }
    }
}

/// `POST /alert/clear`.
pub async fn clear(portal: &Portal) -> Response<Body> {
    apply(portal, None).await
}

async fn apply(portal: &Portal, alert: Option<Alert>) -> Response<Body> {
    let _changing = portal.changing.lock().await;
    let old = portal.live.load_full();
    let opened = alert.as_ref().is_some_and(|a| a.open_gate);
    let built = {
        let (old, alert) = (old.clone(), alert.clone());
        tokio::task::spawn_blocking(move || {
            let live = crate::reload::with_alert(&old, alert.clone())?;
            alert::save(&old.config.state.dir, alert.as_ref())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", alert::path(&old.config.state.dir).display()))?;
            anyhow::Ok(live)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
    };
    let live = match built {
        Ok(live) => live,
        Err(e) => {
            tracing::error!("the alert was not changed: {e:#}");
            return body::text(StatusCode::SERVICE_UNAVAILABLE, format!("the alert was not changed: {e:#}\n"));
        }
    };
    if let Err(e) = portal.gate.set_open(opened).await {
        // Written and shown; the gate is retried with the next rebuild.
        tracing::error!(error = %e, open = opened, "the firewall refused to change the open gate");
    }
    portal.live.store(Arc::new(live));
    match &alert {
        Some(a) => tracing::warn!(title = %a.notice.texts[0].title, open_gate = a.open_gate, "alert set"),
        None => tracing::warn!("alert cleared"),
    }
    show(portal)
}
