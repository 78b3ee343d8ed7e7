//! The running portal's state, in one place: what every request handler
//! reads ([`Portal`]), the part a reload or an alert replaces whole
//! ([`Live`]), and a scheduled campaign ready to serve ([`OnAir`]).
//!
//! Built by `server` at start-up and by `reload` (a SIGHUP, a new bundle,
//! an alert set or cleared); read by `http`. Nothing here serves.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;

use crate::campaign::Campaign;
use crate::client::{self, Client};
use crate::config::{AdminToken, Config, Limits};
use crate::firewall::Gate;
use crate::guard::Guard;
use crate::intercepts::Intercepts;
use crate::metrics::Metrics;
use crate::neighbours::Neighbours;
use crate::pages::Pages;
use crate::sessions::Sessions;

/// Everything a request handler reads: what a reload replaces, the grant
/// table, the firewall and the counters.
pub struct Portal {
    /// Swapped whole by a reload (SIGHUP). A request loads it once and uses
    /// that one version throughout, so it never mixes an old page with a
    /// new config; loading is a lock-free pointer read.
    pub live: ArcSwap<Live>,
    pub sessions: Sessions,
    /// The same gate the grant table drives; read for `/healthz`.
    pub gate: Gate,
    pub metrics: Arc<Metrics>,
    /// Bound at start-up, like the listeners they protect.
    pub limits: Limits,
    pub guard: Guard,
    /// Who is behind an address; see [`crate::client`].
    pub neighbours: Neighbours,
    pub intercepts: Arc<Intercepts>,
    /// The daily counts the splash and the accept add to.
    pub counts: crate::counts::Counts,
    /// Held by whatever replaces `live` from what it holds (a reload, an
    /// alert set or cleared), so that one change never undoes another.
    pub changing: tokio::sync::Mutex<()>,
}

impl Portal {
    /// The client's address for a request from `peer` with these headers:
    /// the one place requests are told apart (see [`crate::client`]).
    pub fn address_of(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> IpAddr {
        client::address(peer, &self.limits.trusted_proxies, headers)
    }

    /// The client at that address, with its MAC. Asked only where the
    /// device matters (a grant is looked up or made), not for every page:
    /// a lookup that misses may read the kernel's table.
    pub fn client_at(&self, ip: IpAddr) -> Client {
        Client::at(ip, &self.neighbours)
    }
}

/// The reloadable part: the config, the campaigns, every page rendered from
/// them, the TLS certificate and the admin token.
pub struct Live {
    pub config: Config,
    /// The default campaign (`portal.campaign`): shown when no scheduled
    /// one is on the air.
    pub campaign: Campaign,
    pub pages: Pages,
    /// One per `config.campaigns` entry, in its order; `None` for one that
    /// cannot be shown yet (a bundle never fetched).
    pub scheduled: Vec<Option<OnAir>>,
    /// The emergency notice in force, whose pages replace the campaigns'.
    pub alert: Option<crate::alert::Alert>,
    pub tls: Option<TlsAcceptor>,
    /// When the certificate of `tls` expires, for the metrics.
    pub tls_expiry: Option<SystemTime>,
    /// Read from `admin.token_file`, so a reload rotates it.
    pub admin_token: Option<AdminToken>,
}

/// A scheduled campaign ready to serve: loaded, checked, every page
/// rendered.
pub struct OnAir {
    pub campaign: Campaign,
    pub pages: Pages,
}

impl Live {
    /// The campaign and its pages for the scheduled entry `pick`, or the
    /// default for `None` (see [`crate::schedule::pick`]).
    pub fn showing(&self, pick: Option<usize>) -> (&Campaign, &Pages) {
        match pick.and_then(|i| self.scheduled.get(i)?.as_ref()) {
            Some(on_air) => (&on_air.campaign, &on_air.pages),
            None => (&self.campaign, &self.pages),
        }
    }

    /// Whether an alert has opened the gate for every device.
    pub fn gate_open(&self) -> bool {
        self.alert.as_ref().is_some_and(|a| a.open_gate)
    }

    /// Whether scheduled entry `i` can be shown.
    pub fn available(&self, i: usize) -> bool {
        self.scheduled.get(i).is_some_and(Option::is_some)
    }

    /// The names of the campaigns on the air on `day`: the scheduled ones
    /// that can be shown, or else the default.
    pub fn on_air(&self, day: crate::counts::Day) -> Vec<&str> {
        let kind = self.config.venue.kind;
        let names: Vec<&str> = (self.config.campaigns.iter().zip(&self.scheduled))
            .filter(|(entry, _)| crate::schedule::on_air(entry, kind, day))
            .filter_map(|(_, on_air)| Some(on_air.as_ref()?.campaign.name.as_str()))
            .collect();
        if names.is_empty() { vec![self.campaign.name.as_str()] } else { names }
    }
}
