//! The last good copy of each campaign bundle, in `state.dir/bundles/`:
//! what a gateway that boots offline shows, and what the next fetch asks
//! against (`If-None-Match`, `If-Modified-Since`).
//!
//! One file per bundle URL, replaced whole (see [`crate::durable`]): a
//! line of JSON (the URL, the validators, the signature) and then the
//! bundle's bytes. One file, so a crash never pairs a bundle with another
//! one's signature. A copy is written only after its signature and its
//! campaign were checked, and it is checked again when it is read: a key
//! changed in the config since, or a file changed on disk, is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fetch::Validators;
use super::source::BundleSource;
use super::{Campaign, bundle};

/// A bundle as it was fetched and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub bundle: Vec<u8>,
    pub signature: String,
    pub validators: Validators,
}

#[derive(Serialize, Deserialize)]
struct Header {
    url: String,
    signature: String,
    #[serde(default)]
    validators: Validators,
}

/// The folder of the kept bundles.
pub fn folder(state_dir: &Path) -> PathBuf {
    state_dir.join("bundles")
}

/// The file of `url`'s copy: named by a hash of the URL, which the file
/// also holds, so two URLs can never be mistaken for each other.
fn path(state_dir: &Path, url: &str) -> PathBuf {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x706f7274, 0x69636f);
    url.hash(&mut h);
    folder(state_dir).join(format!("{:016x}.bundle", h.finish()))
}

/// The kept copy of `url`, if there is one that reads.
pub fn read(state_dir: &Path, url: &str) -> Option<Kept> {
    let bytes = std::fs::read(path(state_dir, url)).ok()?;
    let split = bytes.iter().position(|&b| b == b'\n')?;
    let header: Header = serde_json::from_slice(&bytes[..split]).ok()?;
    (header.url == url).then(|| Kept {
        bundle: bytes[split + 1..].to_vec(),
        signature: header.signature,
        validators: header.validators,
    })
}

/// Keeps `kept` as the last good copy of `url`.
pub fn write(state_dir: &Path, url: &str, kept: &Kept) -> std::io::Result<()> {
    let header = Header { url: url.to_owned(), signature: kept.signature.clone(), validators: kept.validators.clone() };
    let mut bytes = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    bytes.extend_from_slice(&kept.bundle);
    crate::durable::replace(&path(state_dir, url), &bytes)
}

/// Verifies and loads a bundle against its source's key: what a fetched
/// bundle and a kept one both go through.
pub fn check(source: &BundleSource, bundle: &[u8], signature: &str) -> Result<Campaign, String> {
    bundle::verify(bundle, signature, &source.key)?;
    bundle::load(bundle, &source.url).map_err(|e| e.to_string())
}

/// The campaign of `source`'s kept copy, checked again; `None` (logged)
/// when there is none or it no longer checks.
pub fn campaign(state_dir: &Path, source: &BundleSource) -> Option<Campaign> {
    let kept = read(state_dir, &source.url)?;
    match check(source, &kept.bundle, &kept.signature) {
        Ok(campaign) => Some(campaign),
        Err(e) => {
            tracing::error!(url = %source.url, error = %e, "the kept copy of the campaign bundle is refused");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_copy_reads_back_under_its_url_only() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept {
            bundle: b"\n\0tar bytes, newlines and all\n".to_vec(),
            signature: "untrusted comment: x\nRW..\ntrusted comment: y\nsig\n".into(),
            validators: Validators { etag: Some("\"v1\"".into()), last_modified: None },
        };
        assert_eq!(read(dir.path(), "https://a.example/c.tar"), None);
        write(dir.path(), "https://a.example/c.tar", &kept).unwrap();
        assert_eq!(read(dir.path(), "https://a.example/c.tar"), Some(kept.clone()));
        assert_eq!(read(dir.path(), "https://b.example/c.tar"), None);
        // A file under the name of another URL (renamed by hand) is not it.
        std::fs::rename(path(dir.path(), "https://a.example/c.tar"), path(dir.path(), "https://b.example/c.tar"))
            .unwrap();
        assert_eq!(read(dir.path(), "https://b.example/c.tar"), None);
    }
}
