//! Portico: a captive-portal banner for public Wi-Fi.
//!
//! A map of the modules, in the order a request meets them. Every arrow
//! between them points down, from the commands and the server to the
//! parts they drive (`tests/modules.rs` checks it, and that this map names
//! every module):
//!
//! - [`cli`]: the commands (`run`, `check`, `firewall print|remove`,
//!   `clients list|revoke|trust|untrust`, `dhcp print`, `report`, `alert
//!   set|clear`, `campaign pack`).
//! - [`config`]: the TOML file → a validated, immutable `Config`.
//! - [`dhcp`]: what the venue's DHCP/DNS server announces (RFC 8910) and
//!   fills (the walled garden); [`garden`] says which names a held device
//!   may reach.
//! - [`server`]: start-up, the listeners, the one shutdown path; [`reload`]
//!   swaps in a new config and campaign on SIGHUP; [`notify`] tells
//!   systemd (ready, reloading, stopping, the watchdog).
//! - [`http`]: accept loops, the router, the RFC 8908 API, admin, serving
//!   what [`portal`] holds (the state every handler reads, and the part a
//!   reload swaps); [`tls`] loads the certificate; [`guard`] limits what a
//!   stranger's address may cost; [`intercepts`] closes a device's
//!   redirected connections when it is granted; [`probes`] is the
//!   operating systems' connectivity probes and their answers.
//! - [`campaign`] and [`lang`]: the province's content and which language a
//!   visitor sees; [`schedule`] which campaign is on the air that day and
//!   which one a device sees; [`campaign::bundle`] packs, verifies and
//!   reads a signed bundle, [`campaign::fetch`] gets one over https,
//!   [`campaign::store`] keeps the last good copy, and [`fleet`] keeps them
//!   current; [`alert`] is the emergency notice that takes every surface;
//!   [`views`] renders it all and [`pages`] keeps every variant
//!   pre-rendered, per [`platform`]; [`qr`] draws the install QR code.
//! - [`client`]: who is asking, decided in one place; [`neighbours`] tells
//!   which MAC is behind an address (the kernel's neighbour table), through
//!   [`netlink`].
//! - [`sessions`]: the grant table; [`store`] makes it durable; [`grant`] is
//!   the record itself, for one device on all its addresses; [`trusted`]
//!   keeps the devices that pass without a grant.
//! - [`firewall`]: the packet filter behind a trait: `nftables`, and `none`
//!   (logs only); [`firewall::gate`] batches changes on one thread.
//! - [`metrics`]: counters for `/metrics` and the operator's page
//!   ([`views::operator`]).
//! - [`counts`]: the durable daily counts per venue; [`report`] prints
//!   them (`portico report`) and combines venues' reports.
//! - [`durable`]: replacing a small file so a crash leaves old or new.

#![forbid(unsafe_code)]

pub mod alert;
pub mod campaign;
pub mod cli;
pub mod client;
pub mod config;
pub mod counts;
pub mod dhcp;
pub mod durable;
pub mod firewall;
pub mod fleet;
pub mod garden;
pub mod grant;
pub mod guard;
pub mod http;
pub mod intercepts;
pub mod lang;
pub mod metrics;
pub mod neighbours;
pub mod netlink;
pub mod notify;
pub mod pages;
pub mod platform;
pub mod portal;
pub mod probes;
pub mod qr;
pub mod reload;
pub mod report;
pub mod schedule;
pub mod server;
pub mod sessions;
pub mod store;
pub mod tls;
pub mod trusted;
pub mod views;
