//! The gateway's packet filter, behind a small trait so backends swap.
//!
//! A backend turns grants into kernel state: `install` creates whatever the
//! backend owns and loads every live grant (it must be idempotent: it runs on
//! every start, and again to repair drift); `allow` and `revoke` change a
//! batch of devices at once. Calls are synchronous (a backend may run a
//! process or talk netlink) and are made from `spawn_blocking`, so they never
//! stall the reactor. What must stay true: a call that returns `Ok` has taken
//! effect, so the phone may be told it is online.

pub mod fw4;
pub mod gate;
mod generation;
pub mod nftables;
mod none;
mod recording;
mod shape;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{Backend, Config};
use crate::grant::{Device, Grant, MacAddr};

pub use gate::Gate;
pub use nftables::Nftables;
pub use none::NoFirewall;
pub use recording::Recording;

#[derive(Clone, Debug, thiserror::Error)]
pub enum FirewallError {
    /// The backend cannot work on this machine (missing tool, kernel support
    /// or permission); the message says what to install or fix.
    #[error("{0}")]
    Unavailable(String),
    /// A change was refused; nothing in the batch may be assumed applied.
    #[error("{0}")]
    Failed(String),
}

/// What the kernel holds for one grant: the device, until when. (The
/// addresses a phone was seen on matter to Portico's answers, not to the
/// packet filter, which knows a phone by its MAC.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub device: Device,
    pub expires: SystemTime,
}

impl Allowed {
    pub fn of(grant: &Grant) -> Allowed {
        Allowed { device: grant.device, expires: grant.expires }
    }

    /// Time left at `now`; zero once expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires.duration_since(now).unwrap_or(Duration::ZERO)
    }

    pub fn is_live(&self, now: SystemTime) -> bool {
        self.expires > now
    }
}

pub trait Firewall: Send + Sync + 'static {
    /// The config name of the backend (`nftables`, `none`).
    fn name(&self) -> &'static str;

    /// Creates the backend's rules and loads `live` and the `trusted`
    /// devices, idempotently.
    fn install(&self, live: &[Allowed], trusted: &[MacAddr], now: SystemTime) -> Result<(), FirewallError>;

    /// Makes `trusted` exactly the devices that pass with no grant and no
    /// timeout.
    fn trust(&self, trusted: &[MacAddr]) -> Result<(), FirewallError>;

    /// Lets every client through with no grant (`open`), or holds those
    /// without one at the gate again, grants and trusted devices
    /// untouched. The backend keeps the state, so a later `install` (a
    /// rebuild) keeps it too. Backends that gate nothing have nothing to do.
    fn set_open(&self, _open: bool) -> Result<(), FirewallError> {
        Ok(())
    }

    /// Checks, without changing anything, that `install` would be taken
    /// (the tool is there, the kernel has what the rules need, Portico may
    /// change them), so that start-up can fail at once with the reason.
    fn validate(&self) -> Result<(), FirewallError> {
        Ok(())
    }

    /// Lets these devices through until each grant's expiry: `fresh` ones
    /// the backend does not hold yet, `renewed` ones it holds with an older
    /// expiry that must be replaced.
    fn allow(&self, fresh: &[Allowed], renewed: &[Allowed], now: SystemTime) -> Result<(), FirewallError>;

    /// Holds these devices at the gate again.
    fn revoke(&self, gone: &[Allowed]) -> Result<(), FirewallError>;

    /// Whether anyone else can change what this backend installs, so that
    /// it is worth watching for drift (`none` installs nothing).
    fn can_drift(&self) -> bool {
        true
    }

    /// A number that changes whenever anyone changes the packet filter,
    /// if the backend can tell (see the `generation` module); the drift check skips
    /// the comparison while it is the one Portico's own last change left.
    fn generation(&self) -> Option<u32> {
        None
    }

    /// Whether the kernel still has the rules `install` creates, read
    /// without listing any set: cheap enough to ask whenever the ruleset
    /// has changed. `None` when the backend cannot tell this cheaply.
    fn rules_intact(&self) -> Option<bool> {
        None
    }

    /// Whether the kernel still holds the rules, every grant in `live` and
    /// every `trusted` device.
    fn check(&self, _live: &[Allowed], _trusted: &[MacAddr], _now: SystemTime) -> Result<Found, FirewallError> {
        Ok(Found::Intact)
    }

    /// The rules `install` would create, as text for `portico firewall print`.
    fn ruleset(&self) -> String;
}

/// What [`Firewall::check`] found in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The rules and every grant.
    Intact,
    /// The rules, but not these grants: someone deleted their elements.
    /// They are added back, the rest of the table left alone.
    Missing(Vec<Allowed>),
    /// Not Portico's rules (the table is gone, someone flushed the ruleset
    /// or changed a chain, a trusted device is missing): the table is
    /// rebuilt with `install`.
    Broken,
}

/// The backend the config asks for.
pub fn from_config(config: &Config) -> Result<Arc<dyn Firewall>, FirewallError> {
    match config.firewall.backend {
        Backend::None => Ok(Arc::new(NoFirewall)),
        Backend::Nftables => Ok(Arc::new(Nftables::new(config)?)),
    }
}
