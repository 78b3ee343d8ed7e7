//! The walled garden: the names a device without a grant may reach (the
//! campaign's own website, say), and the names it must never reach.
//!
//! The packet filter knows addresses, not names, so the garden follows DNS:
//! the venue's dnsmasq resolves a garden name and, with the `nftset=` line
//! `portico dhcp print` writes, adds each address it answers to Portico's
//! `garden_v4` / `garden_v6` sets (see [`crate::firewall::nftables`]). A
//! name is given with its subdomains, as dnsmasq matches them.
//!
//! What must stay true: the garden never lets an operating system's
//! connectivity probe through. A probe that reaches the real internet
//! tells the phone it is online, the phone never opens the splash, and the
//! campaign is never shown. So [`refusal`] refuses every probe host of
//! [`crate::probes`] (and every name above one: `gstatic.com` includes
//! `connectivitycheck.gstatic.com`), and the domains whose front ends answer
//! probes on the same addresses (a Google front end serves `youtube.com`
//! and `connectivitycheck.gstatic.com` alike, so letting one name's
//! addresses through lets the other's probe through) or that a phone checks
//! to decide it is online.

use crate::probes;

/// Domains whose addresses would carry a probe, or that a phone asks to
/// decide it is online, with why. Each includes its subdomains.
const REFUSED: &[(&str, &str)] = &[
    ("google.com", "Google's front ends answer Android's and Chrome's probes"),
    ("gstatic.com", "Google's front ends answer Android's and Chrome's probes"),
    ("googleapis.com", "Google's front ends answer Android's and Chrome's probes"),
    ("android.com", "Google's front ends answer Android's and Chrome's probes"),
    ("youtube.com", "Google's front ends answer Android's and Chrome's probes"),
    ("googlevideo.com", "Google's front ends answer Android's and Chrome's probes"),
    ("googleusercontent.com", "Google's front ends answer Android's and Chrome's probes"),
    ("ggpht.com", "Google's front ends answer Android's and Chrome's probes"),
    ("gvt1.com", "Google's front ends answer Android's and Chrome's probes"),
    ("apple.com", "Apple's servers answer the probe of iOS and macOS"),
    ("icloud.com", "iOS checks iCloud's servers to decide the network is online"),
    ("appleiphonecell.com", "Apple's servers answer the probe of iOS and macOS"),
    ("msftconnecttest.com", "it answers the probe of Windows"),
    ("msftncsi.com", "it answers the probe of older Windows"),
    ("firefox.com", "it answers Firefox's probe"),
    ("miui.com", "it answers the probe of Xiaomi phones"),
    ("hicloud.com", "it answers the probe of Huawei phones"),
    ("s3.amazonaws.com", "Amazon S3's front ends answer the Kindle's probe"),
];

/// Why `host` may not be in the walled garden, if it may not. `host` is
/// what the operator wrote (checked for form here too).
pub fn refusal(host: &str) -> Option<String> {
    if let Some(problem) = form(host) {
        return Some(problem);
    }
    let covers = |name: &str| name == host || name.ends_with(&format!(".{host}"));
    let within = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    if let Some((probe, _, _)) = probes::all().find(|(probe, _, _)| covers(probe) || within(probe)) {
        return Some(format!(
            "{host:?} would let the connectivity probe at {probe} through: the phone would think it is online \
             and never show the splash"
        ));
    }
    REFUSED.iter().find(|(domain, _)| within(domain) || covers(domain)).map(|(domain, why)| {
        format!("{host:?} is within {domain}, and {why}: the phone would think it is online and never show the splash")
    })
}

/// Whether `host` is written as a garden name: a DNS name (not an address,
/// not a wildcard) of at least two labels, lower case.
fn form(host: &str) -> Option<String> {
    if let Some(name) = host.strip_prefix("*.") {
        return Some(format!("{host:?}: write {name:?}; its subdomains are included"));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Some(format!("{host:?} is an address: the walled garden takes names, and follows their DNS answers"));
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if host.len() > 253 || !labels.iter().all(label_ok) {
        return Some(format!("{host:?} is not a DNS name (lower-case letters, digits, - and .)"));
    }
    if labels.len() < 2 {
        return Some(format!("{host:?} is a whole top-level domain: name the site, e.g. \"bluezone.gov.vn\""));
    }
    None
}

/// The dnsmasq line that fills Portico's garden sets in `table` as the
/// names in `hosts` are resolved.
pub fn nftset_line(hosts: &[String], table: &str) -> String {
    let domains: String = hosts.iter().map(|h| format!("/{h}")).collect();
    format!("nftset={domains}/4#inet#{table}#garden_v4,6#inet#{table}#garden_v6")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_host_and_the_domains_above_it_are_refused() {
        for (host, _, _) in probes::all() {
            let why = refusal(host).unwrap_or_else(|| panic!("{host} was let into the garden"));
            assert!(why.contains("probe"), "{host}: {why}");
            let parent = host.split_once('.').map(|(_, p)| p).unwrap();
            if parent.contains('.') {
                assert!(refusal(parent).is_some(), "{parent} covers {host}");
            }
        }
        for host in ["play.google.com", "apps.apple.com", "www.youtube.com", "icloud.com", "ipv6.msftconnecttest.com"] {
            assert!(refusal(host).is_some(), "{host}");
        }
    }

    #[test]
    fn a_campaign_site_is_let_in_and_bad_forms_say_why() {
        for host in ["bluezone.gov.vn", "www.bluezone.gov.vn", "moh.gov.vn", "xn--bluezone-9ua.vn"] {
            assert_eq!(refusal(host), None, "{host}");
        }
        for (host, says) in [
            ("*.bluezone.gov.vn", "subdomains are included"),
            ("203.0.113.7", "an address"),
            ("vn", "top-level"),
            ("Bluezone.gov.vn", "not a DNS name"),
            ("a..vn", "not a DNS name"),
        ] {
            let why = refusal(host).unwrap_or_else(|| panic!("{host} was let in"));
            assert!(why.contains(says), "{host}: {why}");
        }
    }

    #[test]
    fn the_nftset_line_names_both_sets_of_the_table() {
        let hosts = ["bluezone.gov.vn".to_owned(), "moh.gov.vn".to_owned()];
        assert_eq!(
            nftset_line(&hosts, "portico"),
            "nftset=/bluezone.gov.vn/moh.gov.vn/4#inet#portico#garden_v4,6#inet#portico#garden_v6"
        );
    }
}
