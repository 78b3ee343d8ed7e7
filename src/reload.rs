//! Reloading on SIGHUP: the config file's reloadable parts (the trusted
//! devices and the admin token among them), the campaign and the TLS certificate, swapped in whole without dropping a connection or a
//! grant.
//!
//! What must stay true: a reload that fails in any way changes nothing (the
//! old version keeps serving, and the reason is logged and counted); one that
//! succeeds replaces every page at once, so no visitor sees a mix. Keys that
//! name sockets, the firewall or the state folder are bound at start-up;
//! a change to them is reported and takes effect at the next restart.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use crate::campaign::Campaign;
use crate::config::{AdminToken, CampaignSource, Config};
use crate::http::{self, Live, OnAir, Portal};
use crate::pages::Pages;

/// Where a reload reads the configuration from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    File(PathBuf),
    /// The built-in demo: a reload re-reads only the built-in campaign.
    Demo,
}

impl ConfigSource {
    pub fn load(&self) -> anyhow::Result<Config> {
        match self {
            ConfigSource::File(path) => Ok(Config::load(path)?),
            ConfigSource::Demo => Ok(Config::demo()),
        }
    }
}

/// Everything that is rebuilt from a config: the campaign, the pages, the
/// TLS acceptor and the admin token.
pub fn build_live(config: Config) -> anyhow::Result<Live> {
    // Again here, after a reload put back the bound `admin.listen`: a file
    // that moved it to loopback and dropped the token must not leave the
    // listener still bound elsewhere open.
    if let Some(problem) = config.admin.open_door() {
        anyhow::bail!("{problem}");
    }
    let admin_token = match &config.admin.token_file {
        Some(path) => {
            let token = AdminToken::read(path).map_err(|problem| anyhow::anyhow!("{problem}"))?;
            if let Some(warning) = token.permissions_warning(path) {
                tracing::warn!("{warning}");
            }
            Some(token)
        }
        None => None,
    };
    let campaign = Campaign::load(&config.portal.campaign).context("loading the campaign")?;
    let pages = Pages::build(&config, &campaign)?;
    let mut scheduled = Vec::with_capacity(config.campaigns.len());
    for (i, entry) in config.campaigns.iter().enumerate() {
        let on_air = match &entry.source {
            // Shown once fetched and verified.
            CampaignSource::Bundle(_) => None,
            source => {
                let campaign =
                    Campaign::load(source).with_context(|| format!("campaigns[{}]: loading {source}", i + 1))?;
                let pages = Pages::build(&config, &campaign)?;
                Some(OnAir { campaign, pages })
            }
        };
        scheduled.push(on_air);
    }
    let (tls, tls_expiry) = match &config.tls {
        Some(t) => {
            let (acceptor, expiry) = http::tls::load(&t.cert, &t.key)?;
            (Some(acceptor), expiry)
        }
        None => (None, None),
    };
    Ok(Live { config, campaign, pages, scheduled, tls, tls_expiry, admin_token })
}

/// Reads the source again and swaps in the result, or keeps the old
/// version and logs why.
pub async fn reload(portal: &Portal, source: &ConfigSource) {
    let old = portal.live.load_full();
    let source = source.clone();
    let built = tokio::task::spawn_blocking(move || {
        let mut config = source.load()?;
        let changed = keep_start_up_keys(&old.config, &mut config);
        build_live(config).map(|live| (live, changed))
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match built {
        Ok((live, changed)) => {
            for key in changed {
                tracing::warn!(key, "changed in the config file; it takes effect at the next restart");
            }
            portal.sessions.set_session(live.config.portal.session);
            portal.counts.set_zone(live.config.venue.timezone.clone());
            // `[[trusted]]` is applied at once; a firewall that refuses
            // keeps the devices trusted before.
            if let Err(e) = portal.sessions.set_configured_trusted(live.config.trusted.clone()).await {
                tracing::error!(error = %e, "the trusted devices of the config file could not be applied");
            }
            tracing::info!(
                campaign = %live.campaign.name,
                languages = live.campaign.locales.len(),
                "reloaded the config and campaign"
            );
            portal.live.store(Arc::new(live));
            portal.metrics.reloaded(true);
        }
        Err(e) => {
            tracing::error!("reload refused, still serving the previous version: {e:#}");
            portal.metrics.reloaded(false);
        }
    }
}

/// Puts back the keys bound at start-up, returning the ones the file changed.
fn keep_start_up_keys(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if new.portal.listen != old.portal.listen {
        changed.push("portal.listen");
        new.portal.listen = old.portal.listen;
    }
    if new.admin.listen != old.admin.listen {
        changed.push("admin.listen");
        new.admin.listen = old.admin.listen;
    }
    match (&old.tls, &mut new.tls) {
        (Some(o), Some(n)) if n.listen != o.listen => {
            changed.push("tls.listen");
            n.listen = o.listen;
        }
        (Some(_), None) | (None, Some(_)) => {
            changed.push("tls");
            new.tls = old.tls.clone();
        }
        _ => {}
    }
    // The rules are installed once; the trusted devices are not rules.
    if new.firewall != old.firewall {
        changed.push("firewall");
        new.firewall = old.firewall.clone();
    }
    if new.walled_garden != old.walled_garden {
        changed.push("walled_garden");
        new.walled_garden = old.walled_garden.clone();
    }
    if new.limits != old.limits {
        changed.push("limits");
        new.limits = old.limits.clone();
    }
    if new.state.dir != old.state.dir {
        changed.push("state.dir");
        new.state.dir = old.state.dir.clone();
    }
    changed
}
