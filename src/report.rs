//! `portico report`: the daily counts of one venue as CSV or JSON, and
//! `portico report --merge`, which combines many venues' CSV reports into
//! one table for the province.
//!
//! It reads the counts folder of the config's `state.dir` and nothing
//! else, so it works with the service stopped, and with it running reads
//! what was last written (at most a second old).
//!
//! The CSV is UTF-8 with a byte-order mark, so that Excel (which otherwise
//! guesses the system's code page, Windows-1258 in Vietnam) shows the
//! venue's and province's diacritics as written; fields are quoted as RFC
//! 4180 says and lines end in CRLF. One row per day; the columns, in this
//! order:
//!
//! - `venue,province,kind,date,devices_shown,devices_connected,devices_returning,splash_views`
//!   (dates `YYYY-MM-DD`, the venue's day);
//! - by platform: `shown_android,shown_ios,shown_other`, then the same
//!   three for `connected_`, `returning_` and `views_`;
//! - by the venue's hour: `shown_h00` … `shown_h23`, then the same 24 for
//!   `connected_`, `returning_` and `views_`;
//! - by language, last because the set depends on the campaign: for each
//!   language tag in alphabetical order, `shown_lang_<tag>`,
//!   `connected_lang_<tag>`, `returning_lang_<tag>`, `views_lang_<tag>`.
//!
//! `--merge` reads reports whose language columns may differ, checks that
//! every other column is the one above, and writes one header with every
//! language any of them has, a missing count being 0.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::Config;
use crate::counts::{ByPlatform, Day, DayCounts, Measures, read_days};

/// The columns every report starts with: the stable surface of issue 12.
pub const FIRST_COLUMNS: [&str; 8] =
    ["venue", "province", "kind", "date", "devices_shown", "devices_connected", "devices_returning", "splash_views"];

const MEASURES: [&str; 4] = ["shown", "connected", "returning", "views"];
const PLATFORMS: [&str; 3] = ["android", "ios", "other"];
/// Excel reads a file that starts with it as UTF-8.
const BOM: &str = "\u{feff}";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

fn measure(m: &Measures, name: &str) -> u64 {
    match name {
        "shown" => m.shown,
        "connected" => m.connected,
        "returning" => m.returning,
        _ => m.views,
    }
}

fn platform(p: &ByPlatform, name: &str) -> Measures {
    match name {
        "android" => p.android,
        "ios" => p.ios,
        _ => p.other,
    }
}

/// The columns that are the same in every report.
fn fixed_columns() -> Vec<String> {
    let mut columns: Vec<String> = FIRST_COLUMNS.iter().map(|c| c.to_string()).collect();
    for m in MEASURES {
        columns.extend(PLATFORMS.iter().map(|p| format!("{m}_{p}")));
    }
    for m in MEASURES {
        columns.extend((0..24).map(|h| format!("{m}_h{h:02}")));
    }
    columns
}

fn lang_columns(langs: &BTreeSet<String>) -> Vec<String> {
    langs.iter().flat_map(|l| MEASURES.iter().map(move |m| format!("{m}_lang_{l}"))).collect()
}

/// The venue as the report names it.
pub struct VenueLabel {
    pub name: String,
    pub province: String,
    pub kind: String,
}

impl VenueLabel {
    pub fn of(config: &Config) -> VenueLabel {
        let venue = &config.venue;
        VenueLabel {
            name: venue.name.clone(),
            province: venue.province.clone().unwrap_or_default(),
            kind: venue.kind.as_str().to_owned(),
        }
    }
}

/// The CSV report of `days`.
pub fn csv(venue: &VenueLabel, days: &[DayCounts]) -> String {
    let langs: BTreeSet<String> = days.iter().flat_map(|d| d.tally.by_lang.keys().cloned()).collect();
    let mut header = fixed_columns();
    header.extend(lang_columns(&langs));
    let mut out = String::from(BOM);
    write_record(&mut out, header.iter().map(String::as_str));
    for day in days {
        let t = &day.tally;
        let mut row: Vec<String> =
            vec![venue.name.clone(), venue.province.clone(), venue.kind.clone(), day.date.to_string()];
        row.extend(MEASURES.iter().map(|m| measure(&t.total, m).to_string()));
        for m in MEASURES {
            row.extend(PLATFORMS.iter().map(|p| measure(&platform(&t.by_platform, p), m).to_string()));
        }
        for m in MEASURES {
            row.extend(t.by_hour.iter().map(|h| measure(h, m).to_string()));
        }
        for lang in &langs {
            let counts = t.by_lang.get(lang).copied().unwrap_or_default();
            row.extend(MEASURES.iter().map(|m| measure(&counts, m).to_string()));
        }
        write_record(&mut out, row.iter().map(String::as_str));
    }
    out
}

/// One JSON row: the CSV's first columns, then the breakdowns nested.
#[derive(Serialize)]
struct JsonRow<'a> {
    venue: &'a str,
    province: &'a str,
    kind: &'a str,
    date: Day,
    devices_shown: u64,
    devices_connected: u64,
    devices_returning: u64,
    splash_views: u64,
    by_platform: &'a ByPlatform,
    by_lang: &'a std::collections::BTreeMap<String, Measures>,
    by_hour: &'a [Measures; 24],
}

/// The JSON report of `days`: an array of objects, one per day.
pub fn json(venue: &VenueLabel, days: &[DayCounts]) -> String {
    let rows: Vec<JsonRow> = days
        .iter()
        .map(|d| JsonRow {
            venue: &venue.name,
            province: &venue.province,
            kind: &venue.kind,
            date: d.date,
            devices_shown: d.tally.total.shown,
            devices_connected: d.tally.total.connected,
            devices_returning: d.tally.total.returning,
            splash_views: d.tally.total.views,
            by_platform: &d.tally.by_platform,
            by_lang: &d.tally.by_lang,
            by_hour: &d.tally.by_hour,
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&rows).expect("plain data serializes");
    text.push('\n');
    text
}

/// Appends one CSV record (RFC 4180: a field with a comma, a quote or a
/// line break is quoted, its quotes doubled; CRLF ends the record).
fn write_record<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

/// Parses RFC 4180 CSV (a leading BOM is skipped) into records.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                line += usize::from(c == '\n');
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
            }
            (false, '"') => return Err(format!("line {line}: a quote inside an unquoted field")),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {line}: a quoted field is not closed"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Combines CSV reports into one: the same columns (languages united),
/// every row of every file in the order given.
pub fn merge(files: &[(String, String)]) -> Result<String, String> {
    let fixed = fixed_columns();
    let mut langs = BTreeSet::new();
    let mut tables = Vec::new();
    for (name, text) in files {
        let mut records = parse_csv(text).map_err(|e| format!("{name}: {e}"))?.into_iter();
        let header = records.next().ok_or_else(|| format!("{name}: empty, not a report"))?;
        if header.len() < fixed.len() || header[..fixed.len()] != fixed[..] {
            return Err(format!(
                "{name}: its columns are not a Portico report's (the header must start with {})",
                FIRST_COLUMNS.join(",")
            ));
        }
        for column in &header[fixed.len()..] {
            let tag = MEASURES
                .iter()
                .find_map(|m| column.strip_prefix(m).and_then(|c| c.strip_prefix("_lang_")))
                .filter(|t| !t.is_empty())
                .ok_or_else(|| format!("{name}: unknown column {column:?}"))?;
            langs.insert(tag.to_owned());
        }
        let rows: Vec<Vec<String>> = records.collect();
        if let Some((i, _)) = rows.iter().enumerate().find(|(_, r)| r.len() != header.len()) {
            return Err(format!("{name}: row {} has {} fields, the header {}", i + 2, rows[i].len(), header.len()));
        }
        tables.push((header, rows));
    }
    let mut columns = fixed;
    columns.extend(lang_columns(&langs));
    let mut out = String::from(BOM);
    write_record(&mut out, columns.iter().map(String::as_str));
    for (header, rows) in &tables {
        let at: Vec<Option<usize>> = columns.iter().map(|c| header.iter().position(|h| h == c)).collect();
        for row in rows {
            write_record(&mut out, at.iter().map(|i| i.map_or("0", |i| row[i].as_str())));
        }
    }
    Ok(out)
}

/// `portico report --config FILE [--from] [--to] [--format]`.
pub fn command(config: &Path, from: Option<Day>, to: Option<Day>, format: Format) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let days = read_days(&crate::counts::folder(&config.state.dir), from, to);
    let venue = VenueLabel::of(&config);
    let text = match format {
        Format::Csv => csv(&venue, &days),
        Format::Json => json(&venue, &days),
    };
    print_out(&text)
}

/// `portico report --merge FILE...`.
pub fn merge_command(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let texts = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Ok((f.display().to_string(), text))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    print_out(&merge(&texts).map_err(anyhow::Error::msg)?)
}

fn print_out(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `portico report | head` is done when head is.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS).context("writing the report"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{At, Device, Platform};
    use crate::grant::MacAddr;

    fn day_of(date: &str, langs: &[&str]) -> DayCounts {
        let mut d = DayCounts::open(date.parse().unwrap(), [1, 2]);
        for (i, lang) in langs.iter().enumerate() {
            let at = At { lang, platform: Platform::Ios, hour: 7, now: 0 };
            d.splash(&Device::Mac(MacAddr([2, 0, 0, 0, 0, i as u8])), at, || true);
        }
        d.close();
        d
    }

    fn label(name: &str) -> VenueLabel {
        VenueLabel { name: name.into(), province: "Đắk Lắk".into(), kind: "station".into() }
    }

    #[test]
    fn the_csv_has_a_bom_the_stable_columns_and_parses_back() {
        let text = csv(&label("Ga \"Buôn\", Ma Thuột"), &[day_of("2026-03-01", &["vi", "en"])]);
        assert!(text.starts_with(BOM));
        let records = parse_csv(&text).unwrap();
        assert_eq!(records[0][..8], FIRST_COLUMNS.map(String::from));
        assert_eq!(records[0].len(), 8 + 12 + 96 + 8);
        assert_eq!(records[1][..8], ["Ga \"Buôn\", Ma Thuột", "Đắk Lắk", "station", "2026-03-01", "2", "0", "0", "2"]);
        let col = |name: &str| records[0].iter().position(|c| c == name).unwrap();
        assert_eq!((records[1][col("shown_ios")].as_str(), records[1][col("shown_h07")].as_str()), ("2", "2"));
        assert_eq!(records[1][col("views_lang_vi")], "1");
    }

    #[test]
    fn merging_unites_the_languages_and_refuses_what_is_not_a_report() {
        let a = csv(&label("Ga A"), &[day_of("2026-03-01", &["vi"])]);
        let b = csv(&label("Cảng B"), &[day_of("2026-03-01", &["en"]), day_of("2026-03-02", &[])]);
        let merged = parse_csv(&merge(&[("a".into(), a), ("b".into(), b)]).unwrap()).unwrap();
        assert_eq!(merged.len(), 4);
        let col = |name: &str| merged[0].iter().position(|c| c == name).unwrap();
        assert!(col("shown_lang_en") < col("shown_lang_vi"));
        assert_eq!((merged[1][col("shown_lang_vi")].as_str(), merged[1][col("shown_lang_en")].as_str()), ("1", "0"));
        assert_eq!((merged[2][0].as_str(), merged[2][col("shown_lang_en")].as_str()), ("Cảng B", "1"));
        let e = merge(&[("x.csv".into(), "a,b\r\n1,2\r\n".into())]).unwrap_err();
        assert!(e.starts_with("x.csv: ") && e.contains("venue,province"), "{e}");
    }

    #[test]
    fn csv_quoting_round_trips() {
        let mut out = String::new();
        write_record(&mut out, ["a", "b,c", "d\"e", "f\r\ng", ""].into_iter());
        assert_eq!(parse_csv(&out).unwrap(), vec![vec!["a", "b,c", "d\"e", "f\r\ng", ""]]);
        assert!(parse_csv("a,\"b").is_err());
    }
}
