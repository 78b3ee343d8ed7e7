//! The emergency notice: a typhoon, a flood, an evacuation. Set on the
//! running service (`portico alert set --file NOTICE [--open-gate]`), it
//! takes over the splash, `/welcome`, `/signage` and `/poster` at once,
//! whatever campaign is on the air, until `portico alert clear`.
//!
//! A notice is one short TOML file, every language in it:
//!
//! ```toml
//! languages = ["vi", "en"]   # the order on the boards; the first is the default
//!
//! [vi]
//! title = "Cảnh báo bão số 3"
//! text = "Bão đổ bộ chiều nay. Ở trong nhà ga và làm theo hướng dẫn của nhân viên."
//!
//! [en]
//! title = "Typhoon warning"
//! text = "The typhoon reaches the coast this afternoon. Stay inside the station."
//! ```
//!
//! What must stay true:
//! - a notice is checked whole before it is shown; a bad one is refused
//!   with every problem named and the alert in force (or none) stays;
//! - it is short (a title of at most [`MAX_TITLE`] characters, a text of at
//!   most [`MAX_TEXT`]): it must fit a phone's first screen and a board;
//! - it lasts: it is written to `state.dir/alert.json` (durably, see
//!   [`crate::durable`]) before the service answers that it is set, so a
//!   restart or a `kill -9` shows it again; clearing removes the file first.
//! - `open_gate` (like Japan's 00000JAPAN after a disaster) lets every
//!   device through without a tap while the alert is on; clearing it puts
//!   the gate back with every grant as it was, since grants are never
//!   touched by it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::lang;

/// The longest title, in characters.
pub const MAX_TITLE: usize = 80;
/// The longest text, in characters.
pub const MAX_TEXT: usize = 600;
/// The most languages a notice may have.
pub const MAX_LANGUAGES: usize = 24;
/// The largest notice file.
pub const MAX_NOTICE_BYTES: usize = 32 * 1024;

/// The file the alert in force is kept in, in `state.dir`.
pub const FILE: &str = "alert.json";

/// One language of a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeText {
    pub tag: String,
    pub title: String,
    /// Paragraphs, split at blank lines.
    pub paragraphs: Vec<String>,
}

/// A checked notice, its languages in the file's order (the first the
/// default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub texts: Vec<NoticeText>,
    /// The file it was read from, kept to be written back as it was.
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    title: String,
    text: String,
}

impl Notice {
    /// Reads and checks a notice; every problem names its key.
    pub fn parse(source: &str) -> Result<Notice, Vec<String>> {
        if source.len() > MAX_NOTICE_BYTES {
            return Err(vec![format!("the notice is over {} KiB; an alert must be short", MAX_NOTICE_BYTES / 1024)]);
        }
        let table: toml::Table = toml::from_str(source).map_err(|e| vec![e.message().trim().to_owned()])?;
        let mut problems = Vec::new();
        let languages: Vec<String> = match table.get("languages") {
            Some(toml::Value::Array(list)) => list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => {
                problems.push("languages: give the list of languages, like languages = [\"vi\", \"en\"]".into());
                Vec::new()
            }
        };
        if table.get("languages").and_then(toml::Value::as_array).is_some_and(|l| l.len() != languages.len()) {
            problems.push("languages: every entry must be a language tag in quotes".into());
        }
        if languages.is_empty() && problems.is_empty() {
            problems.push("languages: lists no language".into());
        }
        if languages.len() > MAX_LANGUAGES {
            problems.push(format!("languages: more than {MAX_LANGUAGES}"));
        }
        for key in table.keys().filter(|k| *k != "languages" && !languages.contains(k)) {
            problems.push(format!("[{key}]: not in languages"));
        }
        let mut texts = Vec::new();
        for (i, tag) in languages.iter().enumerate() {
            if !lang::is_valid_tag(tag) {
                problems.push(format!("languages: {tag:?} is not a language tag like \"vi\" or \"zh-Hans\""));
                continue;
            }
            if languages[..i].contains(tag) {
                problems.push(format!("languages: {tag:?} is listed twice"));
                continue;
            }
            let Some(value) = table.get(tag) else {
                problems.push(format!("[{tag}]: missing (every language needs a title and a text)"));
                continue;
            };
            let raw: RawText = match value.clone().try_into() {
                Ok(raw) => raw,
                Err(e) => {
                    problems.push(format!("[{tag}]: {}", e.message().trim()));
                    continue;
                }
            };
            let title = raw.title.trim().to_owned();
            let text = raw.text.trim();
            if title.is_empty() || title.chars().count() > MAX_TITLE {
                problems.push(format!("{tag}.title: must be 1 to {MAX_TITLE} characters"));
            }
            if text.is_empty() || text.chars().count() > MAX_TEXT {
                problems.push(format!("{tag}.text: must be 1 to {MAX_TEXT} characters"));
            }
            if [&title, text].iter().any(|s| s.chars().any(|c| c.is_control() && c != '\n')) {
                problems.push(format!("[{tag}]: holds control characters"));
            }
            let paragraphs = text
                .split("\n\n")
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|p| !p.is_empty());
            texts.push(NoticeText { tag: tag.clone(), title, paragraphs: paragraphs.collect() });
        }
        if problems.is_empty() { Ok(Notice { texts, source: source.to_owned() }) } else { Err(problems) }
    }

    /// The text for a page in `tag`: the same language, else the same
    /// primary language (`zh` for `zh-Hant`), else the default.
    pub fn text_for(&self, tag: &str) -> &NoticeText {
        let primary = |t: &str| t.split('-').next().unwrap_or(t).to_ascii_lowercase();
        self.texts
            .iter()
            .find(|t| t.tag.eq_ignore_ascii_case(tag))
            .or_else(|| self.texts.iter().find(|t| primary(&t.tag) == primary(tag)))
            .unwrap_or(&self.texts[0])
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// The alert in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub notice: Notice,
    /// Every device is let through without a tap while it lasts.
    pub open_gate: bool,
    /// When it was set.
    pub since: SystemTime,
}

/// The alert as `alert.json` and the admin endpoint carry it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertJson {
    /// The notice file's text, as given.
    pub notice: String,
    #[serde(default)]
    pub open_gate: bool,
    /// Unix seconds; absent in a request (the service sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

impl Alert {
    /// An alert from its JSON; the notice is checked again.
    pub fn from_json(json: AlertJson, now: SystemTime) -> Result<Alert, Vec<String>> {
        let notice = Notice::parse(&json.notice)?;
        let since = json.since.map_or(now, |s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
        Ok(Alert { notice, open_gate: json.open_gate, since })
    }

    pub fn to_json(&self) -> AlertJson {
        let since = self.since.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        AlertJson { notice: self.notice.source.clone(), open_gate: self.open_gate, since: Some(since) }
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The alert a previous run left in force, if any. A file that cannot be
/// read back is moved aside (`alert.json.broken`) and logged: the service
/// starts without it rather than not at all.
pub fn load(state_dir: &Path) -> Option<Alert> {
    let path = path(state_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read the alert in force; starting without it");
            return None;
        }
    };
    let read = serde_json::from_slice::<AlertJson>(&bytes)
        .map_err(|e| vec![e.to_string()])
        .and_then(|json| Alert::from_json(json, SystemTime::now()));
    match read {
        Ok(alert) => Some(alert),
        Err(problems) => {
            let aside = path.with_extension("json.broken");
            let _ = std::fs::rename(&path, &aside);
            tracing::error!(file = %path.display(), moved_to = %aside.display(), problems = %problems.join("; "),
                "the alert in force could not be read back; starting without it");
            None
        }
    }
}

/// Writes the alert in force (durably), or removes it.
pub fn save(state_dir: &Path, alert: Option<&Alert>) -> std::io::Result<()> {
    let path = path(state_dir);
    match alert {
        Some(alert) => {
            let mut bytes = serde_json::to_vec_pretty(&alert.to_json()).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            crate::durable::replace(&path, &bytes)
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => std::fs::File::open(state_dir)?.sync_all(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPHOON: &str = r#"
languages = ["vi", "en", "zh-Hans"]

[vi]
title = "Cảnh báo bão số 3"
text = """
Bão đổ bộ chiều nay.

Ở trong nhà ga và làm theo hướng dẫn của nhân viên."""

[en]
title = "Typhoon warning"
text = "The typhoon reaches the coast this afternoon. Stay inside the station."

[zh-Hans]
title = "台风警报"
text = "台风今天下午登陆。请留在车站内。"
"#;

    #[test]
    fn a_notice_reads_its_languages_in_order_with_paragraphs() {
        let notice = Notice::parse(TYPHOON).unwrap();
        let tags: Vec<&str> = notice.texts.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(tags, ["vi", "en", "zh-Hans"]);
        assert_eq!(notice.texts[0].paragraphs.len(), 2);
        assert_eq!(notice.text_for("en").title, "Typhoon warning");
        assert_eq!(notice.text_for("zh-Hant").tag, "zh-Hans", "the same primary language");
        assert_eq!(notice.text_for("ko").tag, "vi", "else the first");
    }

    #[test]
    fn every_problem_of_a_notice_names_its_key() {
        let long = "x".repeat(MAX_TITLE + 1);
        let bad = format!(
            "languages = [\"vi\", \"en\", \"not a tag\"]\n[vi]\ntitle = \"{long}\"\ntext = \"\"\n[fr]\ntitle = \"a\"\ntext = \"b\"\n"
        );
        let problems = Notice::parse(&bad).unwrap_err();
        for expected in ["vi.title", "vi.text", "[en]: missing", "\"not a tag\"", "[fr]: not in languages"] {
            assert!(problems.iter().any(|p| p.contains(expected)), "{expected} in {problems:?}");
        }
        assert_eq!(problems.len(), 5, "{problems:?}");
        let problems =
            Notice::parse("languages = [\"vi\"]\n[vi]\ntitle = \"a\"\ntext = \"b\"\nmore = 1\n").unwrap_err();
        assert!(problems[0].starts_with("[vi]: unknown field `more`"), "{problems:?}");
        assert!(Notice::parse("title = \"no languages\"").is_err());
        assert!(Notice::parse(&"#".repeat(MAX_NOTICE_BYTES + 1)).is_err());
    }

    #[test]
    fn the_alert_in_force_survives_on_disk_and_a_broken_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let since = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let alert = Alert { notice: Notice::parse(TYPHOON).unwrap(), open_gate: true, since };
        save(dir.path(), Some(&alert)).unwrap();
        assert_eq!(load(dir.path()), Some(alert));
        save(dir.path(), None).unwrap();
        assert_eq!(load(dir.path()), None);
        save(dir.path(), None).unwrap();

        std::fs::write(path(dir.path()), b"{\"notice\": \"languages = []\"}").unwrap();
        assert_eq!(load(dir.path()), None);
        assert!(dir.path().join("alert.json.broken").exists());
        assert!(!path(dir.path()).exists());
    }
}
