//! Reading back what the kernel holds: the JSON of `nft -j list table`,
//! reduced to what drift repair compares (how many chains and rules, and
//! which elements each set has).
//!
//! Parsed into types that borrow from the listing, so a table of 100,000
//! elements costs the listing's own bytes and a set of pointers into it,
//! not a tree of JSON values (which took hundreds of megabytes).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Debug, Default)]
pub struct Listing<'a> {
    pub chains: usize,
    pub rules: usize,
    elements: HashMap<&'a str, HashSet<&'a str>>,
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow)]
    nftables: Vec<Item<'a>>,
}

/// One entry of the listing: `{"chain": …}`, `{"rule": …}`, `{"set": …}`,
/// or another kind (`table`, `metainfo`) that is not compared.
#[derive(Deserialize)]
struct Item<'a> {
    chain: Option<IgnoredAny>,
    rule: Option<IgnoredAny>,
    #[serde(borrow)]
    set: Option<Set<'a>>,
}

#[derive(Deserialize)]
struct Set<'a> {
    name: &'a str,
    #[serde(borrow, default)]
    elem: Vec<Element<'a>>,
}

/// `"10.0.0.1"`, or `{"elem": {"val": "10.0.0.1", "timeout": …}}` when the
/// element carries a timeout.
#[derive(Deserialize)]
#[serde(untagged)]
enum Element<'a> {
    Plain(&'a str),
    Timed {
        #[serde(borrow)]
        elem: Value<'a>,
    },
}

#[derive(Deserialize)]
struct Value<'a> {
    val: &'a str,
}

impl<'a> Listing<'a> {
    pub fn parse(json: &'a str) -> Result<Listing<'a>, serde_json::Error> {
        let doc: Document<'a> = serde_json::from_str(json)?;
        let mut listing = Listing::default();
        for item in doc.nftables {
            if item.chain.is_some() {
                listing.chains += 1;
            } else if item.rule.is_some() {
                listing.rules += 1;
            } else if let Some(set) = item.set {
                let values = set.elem.into_iter().map(|e| match e {
                    Element::Plain(v) => v,
                    Element::Timed { elem } => elem.val,
                });
                listing.elements.entry(set.name).or_default().extend(values);
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
