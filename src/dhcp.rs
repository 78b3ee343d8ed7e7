//! What the venue's DHCP server announces so that a phone learns, as it
//! joins, that the network has a portal and where to ask about it
//! (RFC 8910): the URL of the RFC 8908 API (`/api/captive` on the portal's
//! host) in DHCPv4 option 114 and DHCPv6 option 103. A phone that gets it
//! asks the API instead of waiting for its probe to be intercepted.
//! `portico dhcp print` writes the lines for dnsmasq, the DHCP and DNS
//! server of Debian gateways and OpenWrt routers alike, and with them the
//! `nftset=` line that fills the walled garden (see [`crate::garden`]).
//!
//! Android reads the option only when the URL is https (and its certificate
//! valid): an http URL is printed, with a warning, because iOS and others
//! still use it.

use crate::config::{Config, PublicUrl};

/// The RFC 8908 API on the portal's public host.
pub fn api_url(public: &PublicUrl) -> String {
    format!("{}/api/captive", public.origin())
}

/// Why the announced URL may be ignored, if it may.
pub fn api_url_warning(public: &PublicUrl) -> Option<String> {
    (!public.https).then(|| {
        format!(
            "portal.public_url is http, so the RFC 8908 API announced by DHCP is {}: Android ignores an http API \
             (iOS still uses it); serve the portal over https ([tls]) with a certificate phones trust",
            api_url(public)
        )
    })
}

/// dnsmasq lines (`conf-file=` or a file in `/etc/dnsmasq.d/`).
pub fn dnsmasq(config: &Config) -> String {
    let api = api_url(&config.portal.public_url);
    let mut out = String::new();
    out.push_str("# Portico: announce the captive portal's API to every client (RFC 8910).\n");
    out.push_str(&format!(
        "# Venue {:?}; from portal.public_url {}\n",
        config.venue.name, config.portal.public_url.url
    ));
    if let Some(warning) = api_url_warning(&config.portal.public_url) {
        out.push_str(&format!("# WARNING: {warning}\n"));
    }
    // Quoted: dnsmasq would otherwise split the value at a comma.
    out.push_str(&format!("dhcp-option=114,\"{api}\"\n"));
    out.push_str(&format!("dhcp-option=option6:103,\"{api}\"\n"));
    let garden = &config.walled_garden;
    if !garden.is_empty() {
        let ports: Vec<String> = garden.ports.iter().map(u16::to_string).collect();
        out.push_str(&format!(
            "# The walled garden: held devices may reach these names (and their subdomains) on port(s) {}.\n\
             # dnsmasq adds each address it resolves for them to Portico's sets; so held devices must use\n\
             # this dnsmasq for DNS (the DHCP server option above or the default).\n",
            ports.join(", ")
        ));
        out.push_str(&crate::garden::nftset_line(&garden.hosts, &config.firewall.table));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> PublicUrl {
        PublicUrl::parse(s).unwrap()
    }

    #[test]
    fn the_api_is_on_the_portal_host_whatever_the_path() {
        assert_eq!(api_url(&url("https://portal.example.vn/")), "https://portal.example.vn/api/captive");
        assert_eq!(api_url(&url("https://Portal.Example.vn:8443/wifi/")), "https://portal.example.vn:8443/api/captive");
        assert_eq!(api_url(&url("http://[fd00::1]:8080")), "http://[fd00::1]:8080/api/captive");
    }

    #[test]
    fn dnsmasq_gets_both_options_and_a_warning_for_http() {
        let mut config = Config::demo();
        config.portal.public_url = url("https://portal.example.vn/");
        let lines = dnsmasq(&config);
        assert!(lines.contains("dhcp-option=114,\"https://portal.example.vn/api/captive\"\n"), "{lines}");
        assert!(lines.contains("dhcp-option=option6:103,\"https://portal.example.vn/api/captive\"\n"), "{lines}");
        assert!(!lines.contains("WARNING"), "{lines}");
        config.portal.public_url = url("http://10.0.0.1:8080/");
        let lines = dnsmasq(&config);
        assert!(lines.contains("# WARNING: portal.public_url is http"), "{lines}");
        assert!(lines.contains("dhcp-option=114,\"http://10.0.0.1:8080/api/captive\"\n"), "{lines}");
        // Every line is a comment or an option dnsmasq reads.
        assert!(lines.lines().all(|l| l.starts_with('#') || l.starts_with("dhcp-option=")), "{lines}");
        assert!(!lines.contains("nftset="), "no garden, no nftset line: {lines}");
    }

    #[test]
    fn a_walled_garden_adds_its_nftset_line_for_the_configured_table() {
        let mut config = Config::demo();
        config.firewall.table = "gate".into();
        config.walled_garden.hosts = vec!["bluezone.gov.vn".into()];
        config.walled_garden.ports = vec![443];
        let lines = dnsmasq(&config);
        assert!(lines.contains("\nnftset=/bluezone.gov.vn/4#inet#gate#garden_v4,6#inet#gate#garden_v6\n"), "{lines}");
        assert!(lines.contains("on port(s) 443."), "{lines}");
    }
}
