//! Reading back what the kernel holds: the JSON of `nft -j list table`,
//! reduced to what drift repair compares (how many chains and rules, and
//! which elements each set has).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

#[derive(Debug, Default)]
pub struct Listing {
    pub chains: usize,
    pub rules: usize,
    elements: HashMap<String, HashSet<String>>,
}

impl Listing {
    pub fn parse(json: &str) -> Result<Listing, serde_json::Error> {
        let doc: Value = serde_json::from_str(json)?;
        let mut listing = Listing::default();
        let items = doc.get("nftables").and_then(Value::as_array).cloned().unwrap_or_default();
        for item in items {
            if item.get("chain").is_some() {
                listing.chains += 1;
            } else if item.get("rule").is_some() {
                listing.rules += 1;
            } else if let Some(set) = item.get("set") {
                let name = set.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let elems = set.get("elem").and_then(Value::as_array).cloned().unwrap_or_default();
                let values = elems.iter().filter_map(|e| {
                    // `"10.0.0.1"`, or `{"elem": {"val": "10.0.0.1", "timeout": …}}`
                    // when the element carries a timeout.
                    e.as_str().or_else(|| e.get("elem")?.get("val")?.as_str()).map(str::to_owned)
                });
                listing.elements.entry(name).or_default().extend(values);
            }
        }
        Ok(listing)
    }

    pub fn has(&self, set: &str, element: &str) -> bool {
        self.elements.get(set).is_some_and(|s| s.contains(element))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chains_rules_and_timed_elements() {
        let json = r#"{"nftables": [{"metainfo": {"json_schema_version": 1}},
            {"table": {"family": "inet", "name": "portico", "handle": 1}},
            {"set": {"family": "inet", "name": "allowed_mac", "table": "portico", "type": "ether_addr", "flags": ["timeout"],
                     "elem": [{"elem": {"val": "02:00:00:00:0a:01", "timeout": 43200, "expires": 43190}}]}},
            {"set": {"family": "inet", "name": "allowed_v4", "table": "portico", "type": "ipv4_addr", "elem": ["10.0.0.8"]}},
            {"chain": {"family": "inet", "table": "portico", "name": "forward"}},
            {"rule": {"family": "inet", "table": "portico", "chain": "forward", "expr": []}}]}"#;
        let l = Listing::parse(json).unwrap();
        assert_eq!((l.chains, l.rules), (1, 1));
        assert!(l.has("allowed_mac", "02:00:00:00:0a:01"));
        assert!(l.has("allowed_v4", "10.0.0.8"));
        assert!(!l.has("allowed_v6", "10.0.0.8"));
    }
}
