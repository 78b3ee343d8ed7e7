//! The `none` backend: changes nothing in the kernel and logs what it would
//! do. For the demo, for tests that need no root, and for a gateway whose
//! filter is managed by something else. Grants are still kept and made
//! durable by `sessions`; only the kernel side is skipped.

use std::time::SystemTime;

use super::{Allowed, Firewall, FirewallError};
use crate::grant::MacAddr;

pub struct NoFirewall;

impl Firewall for NoFirewall {
    fn name(&self) -> &'static str {
        "none"
    }

    fn install(&self, live: &[Allowed], trusted: &[MacAddr], _now: SystemTime) -> Result<(), FirewallError> {
        tracing::info!(grants = live.len(), trusted = trusted.len(), "firewall backend none: no rules installed");
        Ok(())
    }

    fn trust(&self, trusted: &[MacAddr]) -> Result<(), FirewallError> {
        tracing::info!(trusted = trusted.len(), "firewall none: would trust");
        Ok(())
    }

    fn allow(&self, fresh: &[Allowed], renewed: &[Allowed], now: SystemTime) -> Result<(), FirewallError> {
        for g in fresh.iter().chain(renewed) {
            tracing::info!(device = %g.device, seconds = g.remaining(now).as_secs(), "firewall none: would allow");
        }
        Ok(())
    }

    fn revoke(&self, gone: &[Allowed]) -> Result<(), FirewallError> {
        for g in gone {
            tracing::info!(device = %g.device, "firewall none: would revoke");
        }
        Ok(())
    }

    fn set_open(&self, open: bool) -> Result<(), FirewallError> {
        match open {
            true => tracing::info!("firewall none: would open the gate for every device, no grant needed"),
            false => tracing::info!("firewall none: would hold devices without a grant at the gate"),
        }
        Ok(())
    }

    fn can_drift(&self) -> bool {
        false
    }

    fn ruleset(&self) -> String {
        "# firewall.backend = \"none\": Portico installs no rules.\n".into()
    }
}
