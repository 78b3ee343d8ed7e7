//! Keeping a fleet's campaigns current: every campaign bundle the config
//! names (`portal.campaign` or a `[[campaigns]]` source at an https URL) is
//! asked for again every `poll`, with the validators of the last good copy
//! (a conditional request: `304 Not Modified` costs a few hundred bytes).
//! A new bundle is verified against its minisign key, checked as `portico
//! check` checks a folder, kept on disk (see [`crate::campaign::store`]),
//! and swapped in like a reload. The gateway pulls; nothing pushes, so it
//! works behind NAT or LTE.
//!
//! What must stay true: a bundle that is unsigned, signed by another key,
//! tampered with, too large, slow, or broken is refused with its reason
//! in the log and counted (`portico_campaign_bundle_fetches_total`), and
//! the campaign on the air stays on the air. One task fetches every
//! bundle in turn, each fetch bounded in time and size (see
//! [`crate::campaign::fetch`]), so a stalled server delays nothing but
//! its own next poll; the portal's requests never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::campaign::fetch::{self, FetchLimits, Fetched};
use crate::campaign::store::{self, Kept};
use crate::campaign::{BundleSource, CampaignSource};
use crate::config::Config;
use crate::metrics::Fetch;
use crate::portal::Portal;

/// Starts the task; it ends when the returned handle is dropped.
pub fn spawn(portal: Arc<Portal>) -> Poller {
    Poller(tokio::spawn(run(portal)))
}

/// The fetching task, aborted when dropped.
pub struct Poller(tokio::task::JoinHandle<()>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The bundle sources of a config, each URL once.
fn sources(config: &Config) -> Vec<BundleSource> {
    let all = std::iter::once(&config.portal.campaign).chain(config.campaigns.iter().map(|c| &c.source));
    let mut sources: Vec<BundleSource> = Vec::new();
    for source in all {
        if let CampaignSource::Bundle(b) = source
            && !sources.iter().any(|s| s.url == b.url)
        {
            sources.push(b.clone());
        }
    }
    sources
}

async fn run(portal: Arc<Portal>) {
    // When each URL is next due; a URL new in the config (a reload) is due at once.
    let mut due: HashMap<String, Instant> = HashMap::new();
    loop {
        let config = portal.live.load().config.clone();
        let sources = sources(&config);
        due.retain(|url, _| sources.iter().any(|s| &s.url == url));
        let mut changed = false;
        for source in &sources {
            if due.get(&source.url).is_some_and(|at| *at > Instant::now()) {
                continue;
            }
            changed |= poll(&portal, &config, source).await;
            due.insert(source.url.clone(), Instant::now() + source.poll);
        }
        if changed {
            crate::reload::refresh(&portal).await;
        }
        let next = due.values().min().copied().unwrap_or_else(|| Instant::now() + Duration::from_secs(5));
        // Looked at again at least every 5 s, for a reload that added a bundle.
        tokio::time::sleep_until(next.min(Instant::now() + Duration::from_secs(5))).await;
    }
}

/// One fetch of `source`; whether a new bundle was kept.
async fn poll(portal: &Portal, config: &Config, source: &BundleSource) -> bool {
    let state = config.state.dir.clone();
    let kept = {
        let (state, url) = (state.clone(), source.url.clone());
        tokio::task::spawn_blocking(move || store::read(&state, &url)).await.ok().flatten()
    };
    let ca = match &source.ca {
        Some(path) => match fetch::read_ca(path) {
            Ok(ca) => Some(ca),
            Err(e) => {
                tracing::error!(url = %source.url, ca = %path.display(), error = %e, "cannot read the bundle's ca");
                portal.metrics.fetched(Fetch::Failed);
                return false;
            }
        },
        None => None,
    };
    // A fetch never runs past the next poll, nor shorter than a slow
    // link needs for a small bundle.
    let limits = FetchLimits {
        total_timeout: source.poll.clamp(Duration::from_secs(5), Duration::from_secs(60)),
        ..FetchLimits::default()
    };
    let validators = kept.as_ref().map(|k| &k.validators);
    let (bundle, signature, validators) = match fetch::fetch(&source.url, ca.as_deref(), validators, &limits).await {
        Ok(Fetched::NotModified) => {
            portal.metrics.fetched(Fetch::NotModified);
            return false;
        }
        Ok(Fetched::New { bundle, signature, validators }) => (bundle, signature, validators),
        Err(e) => {
            tracing::warn!(url = %source.url, error = %e, "the campaign bundle could not be fetched; the campaign on the air stays");
            portal.metrics.fetched(Fetch::Failed);
            return false;
        }
    };
    if let Some(k) = kept.as_ref().filter(|k| k.bundle == bundle && k.signature == signature) {
        // The same bytes (a server without validators, or new ones): nothing
        // to swap; the validators are kept if they changed.
        portal.metrics.fetched(Fetch::NotModified);
        if k.validators != validators {
            let kept = Kept { bundle, signature, validators };
            let url = source.url.clone();
            let _ = tokio::task::spawn_blocking(move || store::write(&state, &url, &kept)).await;
        }
        return false;
    }
    let checked = {
        let (source, bundle, signature) = (source.clone(), bundle.clone(), signature.clone());
        tokio::task::spawn_blocking(move || store::check(&source, &bundle, &signature).map(|c| c.name)).await
    };
    match checked {
        Ok(Ok(name)) => {
            let kept = Kept { bundle, signature, validators };
            let url = source.url.clone();
            match tokio::task::spawn_blocking(move || store::write(&state, &url, &kept)).await {
                Ok(Ok(())) => {
                    tracing::info!(url = %source.url, campaign = %name, "a new campaign bundle was verified and kept");
                    portal.metrics.fetched(Fetch::New);
                    true
                }
                Ok(Err(e)) => {
                    tracing::error!(url = %source.url, error = %e, "the new campaign bundle could not be kept on disk; not swapped in");
                    portal.metrics.fetched(Fetch::Failed);
                    false
                }
                Err(_) => false,
            }
        }
        Ok(Err(reason)) => {
            tracing::error!(url = %source.url, %reason, "the campaign bundle is refused; the campaign on the air stays");
            portal.metrics.fetched(Fetch::Refused);
            false
        }
        Err(_) => false,
    }
}
