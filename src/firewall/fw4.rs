//! The lines OpenWrt's firewall (fw4) includes so that its zones let held
//! devices reach the portal (`portico firewall print --fw4`).
//!
//! Portico's table and fw4's `table inet fw4` both hook the kernel's input
//! path, and a packet is let in only if every table accepts it. A guest
//! zone with `input REJECT` rejects a phone's connection to the portal's
//! port in fw4's own chain, whatever Portico's table does: fw4 accepts
//! `ct status dnat` only in a zone that has redirects of its own, and a
//! phone that follows the 302 to `public_url` connects to the portal
//! directly, with no redirect at all. So fw4 must be told: these lines go
//! at the head of its `input` chain (position `chain-pre`, chain `input`:
//! `/usr/share/nftables.d/chain-pre/input/`, see `deploy/openwrt/`),
//! before the rule that sends each zone's traffic to its own chain.
//!
//! They open only the portal's ports (the pages and, with `[tls]`, https),
//! and only on Portico's interfaces; DNS and DHCP stay the operator's
//! rules, and the admin listener stays off the guests' network.

use crate::config::Config;

/// The fw4 include for `config`: comments and one rule, in the syntax fw4
/// pastes into its chain.
pub fn input_include(config: &Config) -> String {
    let ifaces = config.firewall.interfaces.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    let mut ports = vec![config.portal.listen.port()];
    if let Some(tls) = &config.tls {
        ports.push(tls.listen.port());
    }
    ports.sort_unstable();
    ports.dedup();
    let ports = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    format!(
        "# Portico (portico firewall print --fw4): held devices on Portico's\n\
         # interfaces reach the portal, before fw4's zones reject them.\n\
         iifname {{ {ifaces} }} tcp dport {{ {ports} }} accept comment \"portico: the portal\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[venue]\nname = \"Ga\"\n[portal]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"http://10.0.0.1:8080/\"\n\
             [firewall]\nbackend = \"none\"\ninterface = [\"br-guest\", \"br-hall\"]\n{extra}"
        );
        Config::from_toml(&text, std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn opens_the_portal_port_on_portico_interfaces_only() {
        let text = input_include(&config(""));
        let rules: Vec<_> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rules,
            [r#"iifname { "br-guest", "br-hall" } tcp dport { 8080 } accept comment "portico: the portal""#]
        );
    }

    #[test]
    fn with_tls_the_https_port_too() {
        let tls = |port: u16| format!("[tls]\nlisten = \"0.0.0.0:{port}\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n");
        assert!(input_include(&config(&tls(443))).contains("tcp dport { 443, 8080 } accept"));
    }
}
