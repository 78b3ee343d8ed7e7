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
//! - what devices did on `/welcome`, each device once a day:
//!   `google_play` and `app_store` (went to the store through its button),
//!   `installed` (answered "already installed?" with yes);
//! - by language, after the fixed columns because the set depends on the
//!   campaign: for each language tag in alphabetical order,
//!   `shown_lang_<tag>`, `connected_lang_<tag>`, `returning_lang_<tag>`,
//!   `views_lang_<tag>`;
//! - by campaign, last: for each campaign name in alphabetical order, the
//!   same four as `<measure>_campaign_<name>` (a device counts under the
//!   campaign it saw first that day, so these add up to the day's), then
//!   `google_play_campaign_<name>`, `app_store_campaign_<name>` and
//!   `installed_campaign_<name>`.
//!
//! The JSON report is an array of one object per row: the first columns
//! above as keys, then `by_platform`, `by_lang` and `by_hour` nested.
//!
//! `--merge` reads reports in either form (a file starting with `[` is
//! JSON), whose language columns may differ, checks that every other
//! column is the one above, and writes one report (`--format`) with every
//! language any of them has, a missing count being 0.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::counts::{Action, Actions, ByPlatform, Day, DayCounts, Measure, Measures, Tally, read_days};
use crate::platform::Platform;

/// The columns every report starts with: the stable surface of issue 12.
pub const FIRST_COLUMNS: [&str; 8] =
    ["venue", "province", "kind", "date", "devices_shown", "devices_connected", "devices_returning", "splash_views"];

/// Excel reads a file that starts with it as UTF-8.
const BOM: &str = "\u{feff}";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

/// The columns that are the same in every report.
fn fixed_columns() -> Vec<String> {
    let mut columns: Vec<String> = FIRST_COLUMNS.iter().map(|c| c.to_string()).collect();
    for m in Measure::ALL.map(Measure::label) {
        columns.extend(Platform::ALL.map(|p| format!("{m}_{}", p.label())));
    }
    for m in Measure::ALL.map(Measure::label) {
        columns.extend((0..24).map(|h| format!("{m}_h{h:02}")));
    }
    columns.extend(Action::ALL.map(|a| a.label().to_owned()));
    columns
}

/// The columns of a breakdown by name: `<measure>_<what>_<name>`, the
/// names in alphabetical order; a campaign's also `<action>_campaign_<name>`.
fn named_columns(what: &str, names: &BTreeSet<String>) -> Vec<String> {
    let actions: &[Action] = if what == "campaign" { &Action::ALL } else { &[] };
    let labels: Vec<&str> =
        Measure::ALL.map(Measure::label).into_iter().chain(actions.iter().map(|a| a.label())).collect();
    names.iter().flat_map(|n| labels.iter().map(move |m| format!("{m}_{what}_{n}"))).collect()
}

/// The venue as the report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueLabel {
    #[serde(rename = "venue")]
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

/// One row of a report: a venue's day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub venue: VenueLabel,
    pub date: Day,
    pub tally: Tally,
}

impl Row {
    /// The rows of one venue's days.
    pub fn of_days(venue: &VenueLabel, days: Vec<DayCounts>) -> Vec<Row> {
        days.into_iter().map(|d| Row { venue: venue.clone(), date: d.date, tally: d.tally }).collect()
    }
}

/// The CSV report of `rows`.
pub fn csv(rows: &[Row]) -> String {
    let langs: BTreeSet<String> = rows.iter().flat_map(|r| r.tally.by_lang.keys().cloned()).collect();
    let campaigns: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.tally.by_campaign.keys().chain(r.tally.actions_by_campaign.keys()).cloned())
        .collect();
    let mut header = fixed_columns();
    header.extend(named_columns("lang", &langs));
    header.extend(named_columns("campaign", &campaigns));
    let mut out = String::from(BOM);
    write_record(&mut out, header.iter().map(String::as_str));
    for r in rows {
        let (t, venue) = (&r.tally, &r.venue);
        let mut row: Vec<String> =
            vec![venue.name.clone(), venue.province.clone(), venue.kind.clone(), r.date.to_string()];
        row.extend(Measure::ALL.map(|m| t.total.get(m).to_string()));
        for m in Measure::ALL {
            row.extend(Platform::ALL.map(|p| t.by_platform.get(p).get(m).to_string()));
        }
        for m in Measure::ALL {
            row.extend(t.by_hour.iter().map(|h| h.get(m).to_string()));
        }
        row.extend(Action::ALL.map(|a| t.actions.get(a).to_string()));
        for lang in &langs {
            let counts = t.by_lang.get(lang).copied().unwrap_or_default();
            row.extend(Measure::ALL.map(|m| counts.get(m).to_string()));
        }
        for campaign in &campaigns {
            let counts = t.by_campaign.get(campaign).copied().unwrap_or_default();
            row.extend(Measure::ALL.map(|m| counts.get(m).to_string()));
            let actions = t.actions_by_campaign.get(campaign).copied().unwrap_or_default();
            row.extend(Action::ALL.map(|a| actions.get(a).to_string()));
        }
        write_record(&mut out, row.iter().map(String::as_str));
    }
    out
}

/// One JSON row: the CSV's first columns, then the breakdowns nested.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    #[serde(flatten)]
    venue: VenueLabel,
    date: Day,
    devices_shown: u64,
    devices_connected: u64,
    devices_returning: u64,
    splash_views: u64,
    by_platform: ByPlatform,
    by_lang: BTreeMap<String, Measures>,
    #[serde(default)]
    by_campaign: BTreeMap<String, Measures>,
    by_hour: [Measures; 24],
    #[serde(default)]
    actions: Actions,
    #[serde(default)]
    actions_by_campaign: BTreeMap<String, Actions>,
}

/// The JSON report of `rows`: an array of objects, one per row.
pub fn json(rows: &[Row]) -> String {
    let rows: Vec<JsonRow> = rows
        .iter()
        .map(|r| JsonRow {
            venue: r.venue.clone(),
            date: r.date,
            devices_shown: r.tally.total.shown,
            devices_connected: r.tally.total.connected,
            devices_returning: r.tally.total.returning,
            splash_views: r.tally.total.views,
            by_platform: r.tally.by_platform,
            by_lang: r.tally.by_lang.clone(),
            by_campaign: r.tally.by_campaign.clone(),
            by_hour: r.tally.by_hour,
            actions: r.tally.actions,
            actions_by_campaign: r.tally.actions_by_campaign.clone(),
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&rows).expect("plain data serializes");
    text.push('\n');
    text
}

/// The rows of a JSON report.
fn rows_from_json(text: &str) -> Result<Vec<Row>, String> {
    let rows: Vec<JsonRow> = serde_json::from_str(text).map_err(|e| format!("not a Portico JSON report: {e}"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let total = Measures {
                shown: r.devices_shown,
                connected: r.devices_connected,
                returning: r.devices_returning,
                views: r.splash_views,
            };
            let (by_lang, by_campaign, by_platform, by_hour) = (r.by_lang, r.by_campaign, r.by_platform, r.by_hour);
            let (actions, actions_by_campaign) = (r.actions, r.actions_by_campaign);
            let tally = Tally { total, by_lang, by_campaign, by_platform, by_hour, actions, actions_by_campaign };
            Row { venue: r.venue, date: r.date, tally }
        })
        .collect())
}

/// What a named column of a CSV report counts.
#[derive(Clone, Copy)]
enum Number {
    Measure(Measure),
    Action(Action),
}

/// The rows of a CSV report: the stable columns first, in their order,
/// then languages in any order.
fn rows_from_csv(text: &str) -> Result<Vec<Row>, String> {
    let fixed = fixed_columns();
    let mut records = parse_csv(text)?.into_iter();
    let header = records.next().ok_or("empty, not a report")?;
    if header.len() < fixed.len() || header[..fixed.len()] != fixed[..] {
        return Err(format!(
            "its columns are not a Portico report's (the header must start with {})",
            FIRST_COLUMNS.join(",")
        ));
    }
    // Each named column: which number of which language or campaign.
    let mut named = Vec::new();
    for column in &header[fixed.len()..] {
        let measures = Measure::ALL.map(|m| (m.label(), Number::Measure(m)));
        let actions = Action::ALL.map(|a| (a.label(), Number::Action(a)));
        let found = measures
            .into_iter()
            .chain(actions)
            .find_map(|(label, number)| {
                let rest = column.strip_prefix(label)?;
                match (rest.strip_prefix("_lang_"), number) {
                    (Some(tag), Number::Measure(_)) => Some((number, false, tag)),
                    _ => Some((number, true, rest.strip_prefix("_campaign_")?)),
                }
            })
            .filter(|(_, _, name)| !name.is_empty())
            .ok_or_else(|| format!("unknown column {column:?}"))?;
        named.push(found);
    }
    let mut rows = Vec::new();
    for (i, record) in records.enumerate() {
        let line = i + 2;
        if record.len() != header.len() {
            return Err(format!("row {line} has {} fields, the header {}", record.len(), header.len()));
        }
        let number = |at: usize| {
            record[at]
                .parse::<u64>()
                .map_err(|_| format!("row {line}, column {}: {:?} is not a count", header[at], record[at]))
        };
        let date = record[3].parse::<Day>().map_err(|e| format!("row {line}, column date: {e}"))?;
        let venue = VenueLabel { name: record[0].clone(), province: record[1].clone(), kind: record[2].clone() };
        let mut tally = Tally::default();
        let mut at = 4;
        for m in Measure::ALL {
            *tally.total.get_mut(m) = number(at)?;
            at += 1;
        }
        for m in Measure::ALL {
            for p in Platform::ALL {
                *tally.by_platform.get_mut(p).get_mut(m) = number(at)?;
                at += 1;
            }
        }
        for m in Measure::ALL {
            for h in 0..24 {
                *tally.by_hour[h].get_mut(m) = number(at)?;
                at += 1;
            }
        }
        for action in Action::ALL {
            *tally.actions.get_mut(action) = number(at)?;
            at += 1;
        }
        for &(number_of, campaign, name) in &named {
            let n = number(at)?;
            at += 1;
            let m = match number_of {
                Number::Action(action) => {
                    if n > 0 || tally.actions_by_campaign.contains_key(name) {
                        *tally.actions_by_campaign.entry(name.to_owned()).or_default().get_mut(action) = n;
                    }
                    continue;
                }
                Number::Measure(m) => m,
            };
            let map = if campaign { &mut tally.by_campaign } else { &mut tally.by_lang };
            // A language or campaign the venue never showed that day stays
            // absent, as in the report it came from.
            if n > 0 || map.contains_key(name) {
                *map.entry(name.to_owned()).or_default().get_mut(m) = n;
            }
        }
        rows.push(Row { venue, date, tally });
    }
    Ok(rows)
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

/// The rows of many reports, CSV or JSON (told apart by their first
/// character), in the order given; an error names the file.
pub fn merge(files: &[(String, String)]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (name, text) in files {
        let body = text.strip_prefix(BOM).unwrap_or(text).trim_start();
        let read = if body.starts_with('[') { rows_from_json(body) } else { rows_from_csv(text) };
        rows.extend(read.map_err(|e| format!("{name}: {e}"))?);
    }
    Ok(rows)
}

/// `portico report --config FILE [--from] [--to] [--format]`.
pub fn command(config: &Path, from: Option<Day>, to: Option<Day>, format: Format) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let days = read_days(&crate::counts::folder(&config.state.dir), from, to);
    print_out(&write(&Row::of_days(&VenueLabel::of(&config), days), format))
}

fn write(rows: &[Row], format: Format) -> String {
    match format {
        Format::Csv => csv(rows),
        Format::Json => json(rows),
    }
}

/// `portico report --merge FILE... [--format]`.
pub fn merge_command(files: &[PathBuf], format: Format) -> anyhow::Result<ExitCode> {
    let texts = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Ok((f.display().to_string(), text))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    print_out(&write(&merge(&texts).map_err(anyhow::Error::msg)?, format))
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
            let at = At { lang, campaign: "Bluezone", platform: Platform::Ios, hour: 7, now: 0 };
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
        let text = csv(&Row::of_days(&label("Ga \"Buôn\", Ma Thuột"), vec![day_of("2026-03-01", &["vi", "en"])]));
        assert!(text.starts_with(BOM));
        let records = parse_csv(&text).unwrap();
        assert_eq!(records[0][..8], FIRST_COLUMNS.map(String::from));
        // The fixed columns, the three actions, two languages (four
        // columns each) and one campaign (four and three).
        assert_eq!(records[0].len(), 8 + 12 + 96 + 3 + 8 + 4 + 3);
        assert_eq!(records[1][..8], ["Ga \"Buôn\", Ma Thuột", "Đắk Lắk", "station", "2026-03-01", "2", "0", "0", "2"]);
        let col = |name: &str| records[0].iter().position(|c| c == name).unwrap();
        assert_eq!((records[1][col("shown_ios")].as_str(), records[1][col("shown_h07")].as_str()), ("2", "2"));
        assert_eq!(records[1][col("views_lang_vi")], "1");
        assert_eq!(records[1][col("shown_campaign_Bluezone")], "2");
    }

    #[test]
    fn merging_unites_the_languages_and_refuses_what_is_not_a_report() {
        let a = csv(&Row::of_days(&label("Ga A"), vec![day_of("2026-03-01", &["vi"])]));
        let b = Row::of_days(&label("Cảng B"), vec![day_of("2026-03-01", &["en"]), day_of("2026-03-02", &[])]);
        let files = [("a.csv".into(), a), ("b.json".into(), json(&b))];
        let merged = parse_csv(&csv(&merge(&files).unwrap())).unwrap();
        assert_eq!(merged.len(), 4);
        let col = |name: &str| merged[0].iter().position(|c| c == name).unwrap();
        assert!(col("shown_lang_en") < col("shown_lang_vi"));
        assert_eq!((merged[1][col("shown_lang_vi")].as_str(), merged[1][col("shown_lang_en")].as_str()), ("1", "0"));
        assert_eq!((merged[2][0].as_str(), merged[2][col("shown_lang_en")].as_str()), ("Cảng B", "1"));
        let e = merge(&[("x.csv".into(), "a,b\r\n1,2\r\n".into())]).unwrap_err();
        assert!(e.starts_with("x.csv: ") && e.contains("venue,province"), "{e}");
        let e = merge(&[("y.json".into(), "[{\"venue\": 1}]".into())]).unwrap_err();
        assert!(e.starts_with("y.json: not a Portico JSON report"), "{e}");
        let mut bad = csv(&b);
        bad = bad.replacen("Cảng B,Đắk Lắk,station,2026-03-01,1", "Cảng B,Đắk Lắk,station,2026-03-01,x", 1);
        let e = merge(&[("z.csv".into(), bad)]).unwrap_err();
        assert_eq!(e, "z.csv: row 2, column devices_shown: \"x\" is not a count");
    }

    #[test]
    fn a_report_read_back_is_the_same_report_in_either_form() {
        let mut busy = day_of("2026-03-01", &["vi", "en", "zh", "vi"]);
        busy.tally.by_campaign.insert("Tiêm chủng, mùa xuân".into(), Measures { shown: 2, ..Measures::default() });
        busy.tally.actions = Actions { google_play: 3, app_store: 1, installed: 2 };
        let spring = Actions { google_play: 0, app_store: 1, installed: 2 };
        busy.tally.actions_by_campaign.insert("Tiêm chủng, mùa xuân".into(), spring);
        busy.tally.actions_by_campaign.insert("Bluezone".into(), Actions { google_play: 3, ..Actions::default() });
        busy.tally.by_hour[23].connected = 3;
        busy.tally.by_platform.android.returning = 2;
        let rows = Row::of_days(&label("Sân bay \"Buôn\", Ma Thuột"), vec![busy, day_of("2026-03-02", &[])]);
        for text in [csv(&rows), json(&rows)] {
            assert_eq!(merge(&[("r".into(), text)]).unwrap(), rows);
        }
    }

    #[test]
    fn csv_quoting_round_trips() {
        let mut out = String::new();
        write_record(&mut out, ["a", "b,c", "d\"e", "f\r\ng", ""].into_iter());
        assert_eq!(parse_csv(&out).unwrap(), vec![vec!["a", "b,c", "d\"e", "f\r\ng", ""]]);
        assert!(parse_csv("a,\"b").is_err());
    }
}
