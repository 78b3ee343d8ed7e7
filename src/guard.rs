//! Per-client and global limits on what a stranger may cost: request rate
//! (governor, keyed by client address) and open connections per address.
//!
//! What must stay true: memory stays bounded under address churn (a hall
//! full of phones with random MACs and addresses): the rate limiter forgets
//! keys whose bucket is full again ([`Guard::purge`], run periodically), and
//! a client's connection count is removed when its last connection closes.
//! The admin listener is not limited by `[limits]`, with one exception:
//! with a token configured, each address has a fixed budget of attempts
//! at the control endpoints ([`Guard::admit_control`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;
use crate::metrics::Rejection;

pub struct Guard {
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Attempts at the admin listener's token, per address.
    control: DefaultKeyedRateLimiter<IpAddr>,
    global: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
    max_per_client: usize,
    /// A `std` mutex: one map operation per connection open and close, never
    /// held across an await.
    connections: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of a client; dropping it frees the slot.
pub struct ClientSlot {
    ip: IpAddr,
    connections: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The slot of a connection from a trusted proxy. Such a connection
/// carries other clients' requests, so it is not counted against the
/// proxy when accepted but against the client of each request
/// ([`Guard::carry`]); otherwise a busy proxy would hit the cap meant for
/// one phone.
#[derive(Default)]
pub struct ProxiedSlot(Mutex<Option<ClientSlot>>);

impl Guard {
    pub fn new(limits: &Limits) -> Guard {
        let per_client = NonZeroU32::new(limits.per_client_rps).map(|rps| {
            let burst = NonZeroU32::new(limits.per_client_burst).unwrap_or(rps);
            RateLimiter::keyed(Quota::per_second(rps).allow_burst(burst))
        });
        let global = NonZeroU32::new(limits.global_rps).map(|rps| {
            // A second's worth of burst: a train's arrival is bursty.
            RateLimiter::direct(Quota::per_second(rps).allow_burst(rps))
        });
        Guard {
            per_client,
            control: RateLimiter::keyed(Self::CONTROL_QUOTA),
            global,
            clock: DefaultClock::default(),
            max_per_client: limits.per_client_connections,
            connections: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether `client` may make a request now; if not, why and when to
    /// come back.
    pub fn admit(&self, client: IpAddr) -> Result<(), (Rejection, Duration)> {
        if let Some(limiter) = &self.per_client
            && let Err(not_until) = limiter.check_key(&client)
        {
            return Err((Rejection::ClientRate, not_until.wait_time_from(self.clock.now())));
        }
        if let Some(limiter) = &self.global
            && let Err(not_until) = limiter.check()
        {
            return Err((Rejection::GlobalRate, not_until.wait_time_from(self.clock.now())));
        }
        Ok(())
    }

    /// Requests to the admin listener's control endpoints from one
    /// address while a token is required: far more than `portico clients`
    /// ever sends, and few enough that guessing the token is hopeless and a
    /// flood costs almost nothing. Fixed, not a config key: it has no
    /// trade-off an operator would tune.
    const CONTROL_QUOTA: Quota =
        Quota::per_second(NonZeroU32::new(10).unwrap()).allow_burst(NonZeroU32::new(60).unwrap());

    /// Whether `client` may make one more attempt at the admin token now;
    /// if not, when to come back. Asked before the token is compared, for
    /// a right token as much as a wrong one: governor cannot look at a
    /// bucket without spending from it, and spending only on failures
    /// would let a guesser who is shut out still tell a right token (200)
    /// from a wrong one (429).
    pub fn admit_control(&self, client: IpAddr) -> Result<(), Duration> {
        self.control.check_key(&client).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// A connection slot for `client`, or `None` if it has too many open.
    pub fn connect(&self, client: IpAddr) -> Option<ClientSlot> {
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(client).or_insert(0);
        if *n >= self.max_per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot { ip: client, connections: self.connections.clone() })
    }

    /// Counts a connection from a trusted proxy against `client`, the one
    /// whose request it carries now; `false` if that client has too many.
    pub fn carry(&self, slot: &ProxiedSlot, client: IpAddr) -> bool {
        let mut held = slot.0.lock().unwrap_or_else(|e| e.into_inner());
        if held.as_ref().is_some_and(|s| s.ip == client) {
            return true;
        }
        // Let go of the previous client's slot first: a proxy that carries
        // one client after another on a connection holds one slot.
        *held = None;
        *held = self.connect(client);
        held.is_some()
    }

    /// Forgets rate-limiter keys that are back to a full bucket.
    pub fn purge(&self) {
        if let Some(limiter) = &self.per_client {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.control.retain_recent();
        self.control.shrink_to_fit();
    }

    /// Keys held now, for tests and the status page.
    pub fn tracked_clients(&self) -> usize {
        self.per_client.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rps: u32, burst: u32, per_client: usize) -> Limits {
        Limits { per_client_rps: rps, per_client_burst: burst, per_client_connections: per_client, ..Limits::default() }
    }

    #[test]
    fn a_client_past_its_burst_is_told_when_to_return_and_others_are_not_affected() {
        let guard = Guard::new(&limits(1, 5, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..5 {
            assert!(guard.admit(a).is_ok());
        }
        let (why, wait) = guard.admit(a).unwrap_err();
        assert_eq!(why, Rejection::ClientRate);
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(guard.admit(b).is_ok());
    }

    #[test]
    fn control_attempts_have_a_budget_per_address_whatever_the_limits() {
        let guard = Guard::new(&Limits { per_client_rps: 0, global_rps: 0, ..Limits::default() });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let admitted = (0..100).filter(|_| guard.admit_control(a).is_ok()).count();
        assert!((60..70).contains(&admitted), "a burst of 60, then 10 a second: {admitted}");
        let wait = guard.admit_control(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(guard.admit_control(b).is_ok(), "another address has its own budget");
    }

    #[test]
    fn zero_turns_rate_limiting_off() {
        let guard = Guard::new(&Limits { per_client_rps: 0, global_rps: 0, ..Limits::default() });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!((0..10_000).all(|_| guard.admit(a).is_ok()));
    }

    #[test]
    fn connection_slots_are_per_client_and_freed_on_drop() {
        let guard = Guard::new(&limits(20, 60, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let first = guard.connect(a).unwrap();
        let _second = guard.connect(a).unwrap();
        assert!(guard.connect(a).is_none());
        assert!(guard.connect("10.0.0.2".parse().unwrap()).is_some());
        drop(first);
        assert!(guard.connect(a).is_some());
    }

    #[test]
    fn a_proxied_connection_counts_against_the_client_it_carries() {
        let guard = Guard::new(&limits(20, 60, 1));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (first, second) = (ProxiedSlot::default(), ProxiedSlot::default());
        assert!(guard.carry(&first, a));
        assert!(guard.carry(&first, a), "the same client again keeps its slot");
        assert!(!guard.carry(&second, a), "a second connection for a is over its cap of 1");
        assert!(guard.carry(&second, b));
        assert!(!guard.carry(&first, b), "b is at its cap already");
        assert!(guard.connect(a).is_some(), "a's slot was let go");
    }

    #[test]
    fn purge_forgets_clients_under_address_churn() {
        let guard = Guard::new(&limits(1000, 1, 2));
        for i in 0..2000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = guard.admit(ip);
        }
        assert_eq!(guard.tracked_clients(), 2000);
        std::thread::sleep(Duration::from_millis(5));
        guard.purge();
        assert_eq!(guard.tracked_clients(), 0, "every bucket refilled, so every key is forgotten");
    }
}
