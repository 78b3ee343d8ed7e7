//! A campaign: the content of the splash page, owned by the province.
//!
//! A campaign is a folder: `campaign.toml` (name, default language, the
//! language order, store links, the URL behind the QR code) and one
//! `locales/<tag>.toml` per language, every locale with the same keys. The
//! built-in `bluezone` campaign is that same folder embedded in the binary, so
//! the demo and a province's own campaign go through one loader and one set
//! of checks. Loading checks everything up front and reports every problem
//! naming the file and key; a loaded [`Campaign`] is trusted by the views.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

pub mod bundle;
pub mod fetch;
mod image;
pub mod source;
pub mod store;
pub mod svg;

use std::collections::BTreeMap;

pub use image::{Image, MAX_IMAGE_BYTES};

use crate::lang;
pub use source::{BundleKey, BundleSource, CampaignSource};

/// The largest file a campaign folder may hold.
const MAX_CAMPAIGN_FILE: u64 = 256 * 1024;

/// The files of the built-in campaigns, by campaign name and relative path.
const BUILTIN: &[(&str, &str, &[u8])] = &[
    ("bluezone", "campaign.toml", include_bytes!("../assets/campaigns/bluezone/campaign.toml")),
    ("bluezone", "locales/vi.toml", include_bytes!("../assets/campaigns/bluezone/locales/vi.toml")),
    ("bluezone", "locales/en.toml", include_bytes!("../assets/campaigns/bluezone/locales/en.toml")),
    ("bluezone", "locales/zh-Hans.toml", include_bytes!("../assets/campaigns/bluezone/locales/zh-Hans.toml")),
    ("bluezone", "locales/zh-Hant.toml", include_bytes!("../assets/campaigns/bluezone/locales/zh-Hant.toml")),
    ("bluezone", "locales/ko.toml", include_bytes!("../assets/campaigns/bluezone/locales/ko.toml")),
    ("bluezone", "locales/ja.toml", include_bytes!("../assets/campaigns/bluezone/locales/ja.toml")),
    ("bluezone", "locales/ru.toml", include_bytes!("../assets/campaigns/bluezone/locales/ru.toml")),
    ("bluezone", "locales/fr.toml", include_bytes!("../assets/campaigns/bluezone/locales/fr.toml")),
    ("bluezone", "images/logo.svg", include_bytes!("../assets/campaigns/bluezone/images/logo.svg")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    name: String,
    default_language: String,
    languages: Vec<String>,
    install_url: String,
    website: String,
    google_play: String,
    app_store: String,
    /// Image name → path inside the folder (`logo = "images/logo.svg"`).
    #[serde(default)]
    images: BTreeMap<String, String>,
    /// Whether `/welcome` asks "already installed?" as one tap (each
    /// locale then needs the three `installed_` texts).
    #[serde(default)]
    ask_installed: bool,
}

/// Every text of one language. `deny_unknown_fields` and the absence of
/// defaults make "every locale has every key and no other" a parse rule.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocaleText {
    pub language_name: String,
    pub page_title: String,
    pub wifi_at: String,
    pub language_label: String,
    pub title: String,
    pub slogan: String,
    pub intro: String,
    pub steps_title: String,
    pub android_label: String,
    pub ios_label: String,
    pub steps_android: Vec<String>,
    pub steps_ios: Vec<String>,
    pub google_play: String,
    pub app_store: String,
    pub battery_note: String,
    pub qr_caption: String,
    pub website_label: String,
    pub connect: String,
    pub connect_note: String,
    pub welcome_title: String,
    pub welcome_text: String,
    pub retry_title: String,
    pub retry_text: String,
    pub retry_button: String,
    pub not_found_title: String,
    pub back_to_start: String,
    /// One short sentence for signage and the poster's every-language block.
    pub short_line: String,
    /// Three short steps for signage and the poster.
    pub poster_steps: Vec<String>,
    /// "Already have the app?", its one-tap answer, and the thanks after
    /// it: required when the campaign sets `ask_installed`.
    #[serde(default)]
    pub installed_question: Option<String>,
    #[serde(default)]
    pub installed_button: Option<String>,
    #[serde(default)]
    pub installed_thanks: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Locale {
    /// The tag as the campaign spells it (`vi`, `zh-Hans`).
    pub tag: String,
    pub text: LocaleText,
}

/// Links shown as buttons; all https (checked at load).
#[derive(Clone, Debug)]
pub struct Links {
    pub install_url: String,
    pub website: String,
    pub google_play: String,
    pub app_store: String,
}

/// A loaded, checked campaign.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub name: String,
    /// Index into `locales` of the default language.
    pub default: usize,
    /// In switcher order.
    pub locales: Vec<Locale>,
    /// The locales' tags, in the same order: what negotiation compares
    /// against on every page request, collected once here.
    tags: Vec<String>,
    pub links: Links,
    pub images: Vec<Image>,
    /// Whether `/welcome` asks "already installed?".
    pub ask_installed: bool,
}

/// Every problem found in a campaign, one per file and key.
#[derive(Debug)]
pub struct CampaignError {
    pub problems: Vec<String>,
}

impl fmt::Display for CampaignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for CampaignError {}

impl Campaign {
    pub fn load(source: &CampaignSource) -> Result<Campaign, CampaignError> {
        match source {
            CampaignSource::Builtin(name) => {
                if !BUILTIN.iter().any(|(n, _, _)| n == name) {
                    return Err(CampaignError {
                        problems: vec![format!(
                            "portal.campaign: no built-in campaign {name:?} (built in: bluezone; or give a path to a campaign folder)"
                        )],
                    });
                }
                Self::from_files(&format!("<built-in {name}>"), |rel| {
                    BUILTIN
                        .iter()
                        .find(|(n, path, _)| n == name && *path == rel)
                        .map(|(_, _, bytes)| bytes.to_vec())
                        .ok_or_else(|| "missing from the built-in campaign".to_string())
                })
            }
            CampaignSource::Folder(dir) => {
                Self::from_files(&dir.display().to_string(), |rel| read_campaign_file(dir, rel))
            }
            // Fetched and verified at run time; what is loaded is the copy
            // kept on disk (see `crate::reload`).
            CampaignSource::Bundle(b) => Err(CampaignError {
                problems: vec![format!("{}: a bundle is loaded from its last verified copy, not here", b.url)],
            }),
        }
    }

    /// Loads through `read(relative path)`, naming files as `origin/path`.
    /// (`read` must stay inside the campaign: see [`read_campaign_file`].)
    fn from_files(origin: &str, read: impl Fn(&str) -> Result<Vec<u8>, String>) -> Result<Campaign, CampaignError> {
        let mut problems = Vec::new();
        let file = |rel: &str| Path::new(origin).join(rel).display().to_string();
        let read_text =
            |rel: &str| read(rel).and_then(|b| String::from_utf8(b).map_err(|_| "is not UTF-8 text".to_owned()));
        let text = read_text("campaign.toml")
            .map_err(|e| CampaignError { problems: vec![format!("{}: {e}", file("campaign.toml"))] })?;
        let raw: RawCampaign = toml::from_str(&text).map_err(|e| CampaignError {
            problems: vec![format!("{}: {}", file("campaign.toml"), e.message().trim())],
        })?;

        let links = Links {
            install_url: raw.install_url,
            website: raw.website,
            google_play: raw.google_play,
            app_store: raw.app_store,
        };
        for (key, url) in [
            ("install_url", &links.install_url),
            ("website", &links.website),
            ("google_play", &links.google_play),
            ("app_store", &links.app_store),
        ] {
            if !is_https_link(url) {
                problems.push(format!("{}: {key}: {url:?} must be an https:// link", file("campaign.toml")));
            }
        }
        if raw.name.trim().is_empty() {
            problems.push(format!("{}: name: is empty", file("campaign.toml")));
        }
        if raw.languages.is_empty() {
            problems.push(format!("{}: languages: lists no language", file("campaign.toml")));
        }

        let mut locales = Vec::new();
        for tag in &raw.languages {
            if !lang::is_valid_tag(tag) {
                problems.push(format!(
                    "{}: languages: {tag:?} is not a language tag like \"vi\" or \"zh-Hans\"",
                    file("campaign.toml")
                ));
                continue;
            }
            let rel = format!("locales/{tag}.toml");
            match read_text(&rel)
                .and_then(|t| toml::from_str::<LocaleText>(&t).map_err(|e| e.message().trim().to_owned()))
            {
                Ok(text) => {
                    check_locale(&text, &file(&rel), &mut problems);
                    if raw.ask_installed {
                        for (key, value) in [
                            ("installed_question", &text.installed_question),
                            ("installed_button", &text.installed_button),
                            ("installed_thanks", &text.installed_thanks),
                        ] {
                            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                                problems.push(format!(
                                    "{}: {key}: missing, and campaign.toml sets ask_installed",
                                    file(&rel)
                                ));
                            }
                        }
                    }
                    locales.push(Locale { tag: tag.clone(), text });
                }
                Err(e) => problems.push(format!("{}: {e}", file(&rel))),
            }
        }
        let mut images = Vec::new();
        for (name, rel) in &raw.images {
            if name != "logo" {
                problems.push(format!("{}: images.{name}: unknown image (known: logo)", file("campaign.toml")));
                continue;
            }
            match read(rel).and_then(|bytes| image::check(name, rel, bytes)) {
                Ok(image) => images.push(image),
                Err(e) => problems.push(format!("{}: images.{name}: {}: {e}", file("campaign.toml"), file(rel))),
            }
        }
        let default = raw.languages.iter().position(|t| *t == raw.default_language);
        if default.is_none() {
            problems.push(format!(
                "{}: default_language: {:?} is not in languages",
                file("campaign.toml"),
                raw.default_language
            ));
        }
        if !problems.is_empty() {
            return Err(CampaignError { problems });
        }
        let tags = locales.iter().map(|l| l.tag.clone()).collect();
        let ask_installed = raw.ask_installed;
        Ok(Campaign { name: raw.name, default: default.unwrap_or(0), locales, tags, links, images, ask_installed })
    }

    /// The index of the language to show: `?lang=` beats `Accept-Language`
    /// beats the campaign's default.
    pub fn negotiate(&self, query_lang: Option<&str>, accept_language: Option<&str>) -> usize {
        lang::negotiate(&self.tags, query_lang, accept_language).unwrap_or(self.default)
    }

    /// The image served as `/assets/campaign/<file>`, if the campaign has one.
    pub fn image(&self, file: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.file == file)
    }

    pub fn logo(&self) -> Option<&Image> {
        self.images.iter().find(|i| i.name == "logo")
    }

    pub fn locale_index(&self, tag: &str) -> Option<usize> {
        self.locales.iter().position(|l| l.tag == tag)
    }
}

/// Reads one file of a campaign folder. The campaign names its files (the
/// logo's path comes from `campaign.toml`), so the name is held to the
/// folder: no absolute path, no `..`, a regular file only (`/dev/zero` has a
/// length of 0 and no end), and never more than [`MAX_CAMPAIGN_FILE`] bytes.
/// Found with the campaign fuzz target (`fuzz/fuzz_targets/campaign.rs`).
fn read_campaign_file(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    use std::path::Component;
    let relative = Path::new(rel);
    if rel.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("must be a path inside the campaign folder (no leading /, no ..)".into());
    }
    let path = dir.join(relative);
    let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_CAMPAIGN_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_CAMPAIGN_FILE {
        return Err(format!("is larger than {MAX_CAMPAIGN_FILE} bytes, the most a campaign file may have"));
    }
    Ok(bytes)
}

fn is_https_link(url: &str) -> bool {
    url.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or("");
        !host.is_empty() && !url.contains([' ', '"', '<', '>'])
    })
}

/// Empty texts and empty step lists are content mistakes serde cannot see.
fn check_locale(text: &LocaleText, file: &str, problems: &mut Vec<String>) {
    for (key, steps) in [("steps_android", &text.steps_android), ("steps_ios", &text.steps_ios)] {
        if steps.is_empty() || steps.iter().any(|s| s.trim().is_empty()) {
            problems.push(format!("{file}: {key}: needs at least one step and no empty step"));
        }
    }
    let fields = [
        ("language_name", &text.language_name),
        ("title", &text.title),
        ("connect", &text.connect),
        ("page_title", &text.page_title),
    ];
    for (key, value) in fields {
        if value.trim().is_empty() {
            problems.push(format!("{file}: {key}: is empty"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_bluezone_loads_with_vietnamese_default() {
        let c = Campaign::load(&CampaignSource::Builtin("bluezone".into())).unwrap();
        assert_eq!(c.name, "Bluezone");
        assert_eq!(c.locales[c.default].tag, "vi");
        assert_eq!(c.locales[c.default].text.slogan, "Bảo vệ mình, bảo vệ cộng đồng");
        assert!(c.links.google_play.ends_with("id=com.mic.bluezone"));
        assert!(c.links.app_store.ends_with("id1508062685"));
    }

    #[test]
    fn every_builtin_locale_is_complete() {
        let c = Campaign::load(&CampaignSource::Builtin("bluezone".into())).unwrap();
        let tags: Vec<&str> = c.locales.iter().map(|l| l.tag.as_str()).collect();
        assert_eq!(tags, ["vi", "en", "zh-Hans", "zh-Hant", "ko", "ja", "ru", "fr"]);
        let en = &c.locales[1].text;
        for locale in &c.locales {
            let t = &locale.text;
            // Serde already refuses a missing or unknown key; here: nothing
            // left empty and the same number of steps everywhere.
            let value = toml::Value::try_from(t.clone()).unwrap();
            for (key, v) in value.as_table().unwrap() {
                let empty = match v {
                    toml::Value::String(s) => s.trim().is_empty(),
                    toml::Value::Array(a) => a.iter().any(|s| s.as_str().is_none_or(|s| s.trim().is_empty())),
                    _ => true,
                };
                assert!(!empty, "{}: {key} is empty", locale.tag);
            }
            assert_eq!(t.steps_android.len(), en.steps_android.len(), "{}", locale.tag);
            assert_eq!(t.steps_ios.len(), en.steps_ios.len(), "{}", locale.tag);
            assert_eq!(t.poster_steps.len(), 3, "{}", locale.tag);
            assert!(t.steps_android.iter().chain(&t.poster_steps).any(|s| s.contains("Bluezone")), "{}", locale.tag);
        }
        assert_eq!(c.logo().map(|l| l.content_type), Some("image/svg+xml"));
    }

    #[test]
    fn unknown_builtin_is_named() {
        let e = Campaign::load(&CampaignSource::Builtin("nope".into())).unwrap_err();
        assert!(e.to_string().contains("portal.campaign"), "{e}");
    }

    #[test]
    fn campaign_files_stay_inside_the_folder_and_are_bounded() {
        // Regression: a campaign.toml naming `logo = "/dev/zero"` made
        // the loader read for ever (out of memory).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.svg"), "<svg></svg>").unwrap();
        assert_eq!(read_campaign_file(dir.path(), "ok.svg").unwrap(), b"<svg></svg>");
        for bad in ["/dev/zero", "../etc/passwd", "a/../../x", "", "."] {
            assert!(read_campaign_file(dir.path(), bad).is_err(), "{bad}");
        }
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.svg")).unwrap();
        assert_eq!(read_campaign_file(dir.path(), "zero.svg").unwrap_err(), "is not a regular file");
        std::fs::write(dir.path().join("big.png"), vec![0u8; MAX_CAMPAIGN_FILE as usize + 1]).unwrap();
        assert!(read_campaign_file(dir.path(), "big.png").unwrap_err().contains("larger than"));
    }

    #[test]
    fn only_https_links_pass() {
        assert!(is_https_link("https://www.bluezone.gov.vn"));
        assert!(!is_https_link("http://www.bluezone.gov.vn"));
        assert!(!is_https_link("https://"));
        assert!(!is_https_link("javascript:alert(1)"));
    }
}
