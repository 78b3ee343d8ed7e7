//! Where a campaign comes from: one built into the binary, a folder, or a
//! signed bundle at an https URL, with the key that signs it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the campaign comes from: one built into the binary, a folder, or
/// a signed bundle a province publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CampaignSource {
    Builtin(String),
    Folder(PathBuf),
    Bundle(BundleSource),
}

/// A campaign bundle at an https URL, its minisign signature at the same
/// URL plus `.minisig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleSource {
    pub url: String,
    /// The minisign public key it must be signed with.
    pub key: BundleKey,
    /// Extra trusted roots (PEM) for a province's own CA.
    pub ca: Option<PathBuf>,
    /// How often it is asked for again (a conditional request).
    pub poll: Duration,
}

impl fmt::Display for CampaignSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CampaignSource::Builtin(name) => write!(f, "built-in {name}"),
            CampaignSource::Folder(dir) => write!(f, "{}", dir.display()),
            CampaignSource::Bundle(b) => f.write_str(&b.url),
        }
    }
}

/// The minisign public key that a campaign's bundles must be signed with,
/// as `minisign -G` writes it on the second line of `minisign.pub`
/// (`RWQ…`); the whole two-line file is accepted too.
///
/// Two keys are the same when their lines are: a config compares its
/// campaign sources (a reload) by them.
#[derive(Clone)]
pub struct BundleKey {
    line: String,
    pub(super) key: minisign_verify::PublicKey,
}

impl PartialEq for BundleKey {
    fn eq(&self, other: &BundleKey) -> bool {
        self.line == other.line
    }
}

impl Eq for BundleKey {}

impl FromStr for BundleKey {
    type Err = String;

    fn from_str(s: &str) -> Result<BundleKey, String> {
        let mut lines = s.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or("");
        let line = if first.starts_with("untrusted comment:") { lines.next().unwrap_or("") } else { first };
        if lines.next().is_some() {
            return Err("is not a minisign public key: more lines than minisign.pub has".into());
        }
        let key = minisign_verify::PublicKey::from_base64(line).map_err(|e| match e {
            minisign_verify::Error::UnsupportedAlgorithm => {
                format!("{line:?} is not an Ed25519 minisign public key")
            }
            _ => format!(
                "{line:?} is not a minisign public key: give the second line of minisign.pub, \
                 56 characters starting with RW"
            ),
        })?;
        Ok(BundleKey { line: line.to_owned(), key })
    }
}

impl fmt::Debug for BundleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BundleKey({})", self.line)
    }
}
