//! The campaign parsers: whatever a province ships as a campaign gives a
//! `Campaign` or a list of problems, never a panic.
//!
//! Input: text parsed two ways. As a locale file (`locales/<tag>.toml`,
//! `LocaleText`, with the same `toml` the loader uses), and as the
//! `campaign.toml` of a real campaign folder whose locales and images are
//! copies of the built-in `bluezone` campaign, loaded through
//! `Campaign::load` exactly as `portal.campaign = "<folder>"` would be.
//!
//! The folder is made once per process in the temporary directory (run.sh
//! points `TMPDIR` at a scratch folder it removes afterwards); only
//! `campaign.toml` is rewritten for each input.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portico::campaign::{Campaign, LocaleText};
use portico::campaign::CampaignSource;

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create the campaign copy");
    for entry in fs::read_dir(from).expect("read the built-in campaign") {
        let entry = entry.expect("read the built-in campaign");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("stat the built-in campaign").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy the built-in campaign");
        }
    }
}

/// A campaign folder holding the built-in locales and images.
fn folder() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/campaigns/bluezone");
        let dir = std::env::temp_dir().join(format!("portico-fuzz-campaign-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        copy_tree(&builtin, &dir);
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = toml::from_str::<LocaleText>(&text);

    let dir = folder();
    // The raw bytes: the loader's own "is not UTF-8" check is part of it.
    fs::write(dir.join("campaign.toml"), data).expect("write campaign.toml");
    match Campaign::load(&CampaignSource::Folder(dir.to_owned())) {
        Ok(campaign) => {
            // What the views trust a loaded campaign to hold.
            assert!(!campaign.locales.is_empty());
            assert!(campaign.default < campaign.locales.len());
            for link in [
                &campaign.links.install_url,
                &campaign.links.website,
                &campaign.links.google_play,
                &campaign.links.app_store,
            ] {
                assert!(link.starts_with("https://"), "{link:?}");
            }
            let picked = campaign.negotiate(None, Some(&text));
            assert!(picked < campaign.locales.len());
        }
        Err(error) => assert!(!error.problems.is_empty(), "Err with no problem"),
    }
});
