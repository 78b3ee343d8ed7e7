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

use crate::alert::Alert;
use crate::campaign::CampaignSource;
use crate::campaign::{Campaign, store};
use crate::config::{AdminToken, Config};
use crate::pages::Pages;
use crate::portal::{Live, OnAir, Portal};

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

/// Everything that is rebuilt from a config: the campaigns, the pages (with
/// `alert`'s notice in the campaigns' place, if one is in force), the TLS
/// acceptor and the admin token.
pub fn build_live(config: Config, alert: Option<Alert>) -> anyhow::Result<Live> {
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
    let state = &config.state.dir;
    let campaign = match &config.portal.campaign {
        // Until its first fetch, a gateway shows the built-in campaign.
        CampaignSource::Bundle(b) => store::campaign(state, b).map_or_else(
            || {
                tracing::warn!(url = %b.url, "no verified copy of the campaign bundle yet; showing the built-in campaign");
                Campaign::load(&CampaignSource::Builtin("bluezone".into()))
            },
            Ok,
        ),
        source => Campaign::load(source),
    }
    .context("loading the campaign")?;
    let mut scheduled = Vec::with_capacity(config.campaigns.len());
    for (i, entry) in config.campaigns.iter().enumerate() {
        scheduled.push(match &entry.source {
            // On the air once fetched and verified.
            CampaignSource::Bundle(b) => store::campaign(state, b),
            source => Some(Campaign::load(source).with_context(|| format!("campaigns[{}]: loading {source}", i + 1))?),
        });
    }
    let (pages, scheduled) = render(&config, &campaign, scheduled, alert.as_ref())?;
    let (tls, tls_expiry) = match &config.tls {
        Some(t) => {
            let (acceptor, expiry) = crate::tls::load(&t.cert, &t.key)?;
            (Some(acceptor), expiry)
        }
        None => (None, None),
    };
    Ok(Live { config, campaign, pages, scheduled, alert, tls, tls_expiry, admin_token })
}

/// The pages of every campaign, with the alert's notice if one is given.
fn render(
    config: &Config,
    default: &Campaign,
    scheduled: Vec<Option<Campaign>>,
    alert: Option<&Alert>,
) -> anyhow::Result<(Pages, Vec<Option<OnAir>>)> {
    let pages = Pages::build(config, default, alert)?;
    let scheduled = scheduled
        .into_iter()
        .map(|c| c.map(|campaign| Ok(OnAir { pages: Pages::build(config, &campaign, alert)?, campaign })).transpose())
        .collect::<anyhow::Result<_>>()?;
    Ok((pages, scheduled))
}

/// `live` with another alert (or none): the same config and campaigns,
/// every page rendered again. Nothing is read from disk.
pub fn with_alert(live: &Live, alert: Option<Alert>) -> anyhow::Result<Live> {
    let scheduled = live.scheduled.iter().map(|s| s.as_ref().map(|on_air| on_air.campaign.clone())).collect();
    let (pages, scheduled) = render(&live.config, &live.campaign, scheduled, alert.as_ref())?;
    Ok(Live {
        config: live.config.clone(),
        campaign: live.campaign.clone(),
        pages,
        scheduled,
        alert,
        tls: live.tls.clone(),
        tls_expiry: live.tls_expiry,
        admin_token: live.admin_token.clone(),
    })
}

/// Builds `live` again from the same config, with the kept campaign
/// bundles as they are now: after a new bundle was kept (see
/// [`crate::fleet`]). Like a reload, a failure keeps the version serving.
pub async fn refresh(portal: &Portal) {
    let _changing = portal.changing.lock().await;
    let old = portal.live.load_full();
    let built = tokio::task::spawn_blocking(move || build_live(old.config.clone(), old.alert.clone())).await;
    match built.map_err(anyhow::Error::from).and_then(|r| r) {
        Ok(live) => {
            tracing::info!(campaign = %live.campaign.name, "campaigns refreshed from the kept bundles");
            portal.live.store(Arc::new(live));
        }
        Err(e) => tracing::error!("the campaigns were not refreshed, still serving the previous version: {e:#}"),
    }
}

/// Reads the source again and swaps in the result, or keeps the old
/// version and logs why.
pub async fn reload(portal: &Portal, source: &ConfigSource) {
    let _changing = portal.changing.lock().await;
    let old = portal.live.load_full();
    let source = source.clone();
    let built = tokio::task::spawn_blocking(move || {
        let mut config = source.load()?;
        let changed = keep_start_up_keys(&old.config, &mut config);
        build_live(config, old.alert.clone()).map(|live| (live, changed))
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match built {
        Ok((live, changed)) => {
            for key in changed {
                tracing::warn!(key, "changed in the config file; it takes effect at the next restart");
            }
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
