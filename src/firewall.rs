//! The gateway's packet filter, behind a small trait so backends swap.
//!
//! A backend turns grants into kernel state: `install` creates whatever the
//! backend owns and loads every live grant (it must be idempotent: it runs on
//! every start, and again to repair drift); `allow` and `revoke` change a
//! batch of devices at once. Calls are synchronous (a backend may run a
//! process or talk netlink) and are made from `spawn_blocking`, so they never
//! stall the reactor. What must stay true: a call that returns `Ok` has taken
//! effect, so the phone may be told it is online.

pub mod gate;
mod generation;
mod listing;
pub mod nftables;
mod none;

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Backend, Config};
use crate::grant::Grant;

pub use gate::Gate;
pub use nftables::Nftables;
pub use none::NoFirewall;

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

pub trait Firewall: Send + Sync + 'static {
    /// The config name of the backend (`nftables`, `none`).
    fn name(&self) -> &'static str;

    /// Creates the backend's rules and loads `live`, idempotently.
    fn install(&self, live: &[Grant], now: SystemTime) -> Result<(), FirewallError>;

    /// Lets these devices through until each grant's expiry: `fresh` ones
    /// the backend does not hold yet, `renewed` ones it holds with an older
    /// expiry that must be replaced.
    fn allow(&self, fresh: &[Grant], renewed: &[Grant], now: SystemTime) -> Result<(), FirewallError>;

    /// Holds these devices at the gate again.
    fn revoke(&self, grants: &[Grant]) -> Result<(), FirewallError>;

    /// A number that changes whenever anyone changes the packet filter,
    /// if the backend can tell (see [`generation`]); the drift check skips
    /// the comparison while it is the one Portico's own last change left.
    fn generation(&self) -> Option<u32> {
        None
    }

    /// Whether the kernel still holds the rules and every grant in `live`;
    /// `false` asks for a rebuild with `install` (someone flushed the
    /// ruleset or reloaded another firewall).
    fn check(&self, _live: &[Grant], _now: SystemTime) -> Result<bool, FirewallError> {
        Ok(true)
    }

    /// The rules `install` would create, as text for `portico firewall print`.
    fn ruleset(&self) -> String;
}

/// The backend the config asks for.
pub fn from_config(config: &Config) -> Result<Arc<dyn Firewall>, FirewallError> {
    match config.firewall.backend {
        Backend::None => Ok(Arc::new(NoFirewall)),
        Backend::Nftables => Ok(Arc::new(Nftables::new(config)?)),
    }
}
