//! The Prometheus text exposition format, version 0.0.4: what `/metrics`
//! is served as, and what Prometheus and `promtool check metrics` read.
//!
//! What must stay true: every family's `# HELP` and `# TYPE` come once,
//! right before all of its samples, and no family appears twice. The
//! writer makes that so by construction: a [`Family`] borrows the
//! [`Text`] while its samples are written, so two families cannot
//! interleave. Label values are escaped here, never by the caller.
//!
//! Not OpenMetrics: that format names a counter without its `_total`,
//! adds `_created` series and ends with `# EOF`, and promtool's linter
//! (Prometheus 2.x, as in Debian) rejects it; Prometheus scrapes this
//! format as well as that one.

use std::fmt::Write as _;

/// A family's type, as `# TYPE` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The exposition being written.
#[derive(Default)]
pub struct Text {
    out: String,
    /// Every family written so far, to catch a name used twice in tests.
    #[cfg(debug_assertions)]
    names: Vec<&'static str>,
}

impl Text {
    pub fn new() -> Text {
        Text { out: String::with_capacity(8192), ..Text::default() }
    }

    /// Writes a family's `# HELP` and `# TYPE`; its samples follow through
    /// the returned [`Family`].
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        #[cfg(debug_assertions)]
        {
            assert!(!self.names.contains(&name), "the metric family {name} is written twice");
            self.names.push(name);
        }
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family { text: self, name }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// One family's samples; see [`Text::family`].
pub struct Family<'a> {
    text: &'a mut Text,
    name: &'static str,
}

impl Family<'_> {
    /// `name{labels} value`, the labels in the order given.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Value) -> &mut Self {
        self.suffixed("", labels, value)
    }

    /// `name_suffix{labels} value`: a histogram's `_bucket`, `_sum` and
    /// `_count` series belong to its family.
    pub fn suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], value: impl Value) -> &mut Self {
        let out = &mut self.text.out;
        out.push_str(self.name);
        out.push_str(suffix);
        if !labels.is_empty() {
            out.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(label);
                out.push_str("=\"");
                escape_label_into(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        value.write(out);
        out.push('\n');
        self
    }
}

/// A sample's value.
pub trait Value {
    fn write(&self, out: &mut String);
}

impl Value for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for usize {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    /// Rust's `Display` for a float never uses an exponent and prints
    /// `inf`, which the format spells `+Inf`.
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl Value for bool {
    /// A state gauge: 1 or 0.
    fn write(&self, out: &mut String) {
        out.push(if *self { '1' } else { '0' });
    }
}

/// A label value: backslash, double quote and line feed are escaped.
fn escape_label_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: backslash and line feed are escaped (a quote is not).
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_their_family_with_labels_escaped() {
        let mut text = Text::new();
        text.family("a_total", Kind::Counter, "Help with a \\ and\na new line.")
            .sample(&[("venue", "Ga \"A\"\\B\nC")], 3u64)
            .sample(&[], 0u64);
        text.family("b", Kind::Gauge, "B.").sample(&[("x", "1"), ("y", "2")], f64::INFINITY).sample(&[], true);
        assert_eq!(
            text.finish(),
            "# HELP a_total Help with a \\\\ and\\na new line.\n# TYPE a_total counter\n\
             a_total{venue=\"Ga \\\"A\\\"\\\\B\\nC\"} 3\na_total 0\n\
             # HELP b B.\n# TYPE b gauge\nb{x=\"1\",y=\"2\"} +Inf\nb 1\n"
        );
    }

    #[test]
    fn floats_are_written_without_an_exponent() {
        let mut out = String::new();
        0.0025f64.write(&mut out);
        out.push(' ');
        5.0f64.write(&mut out);
        out.push(' ');
        1.0e-7f64.write(&mut out);
        assert_eq!(out, "0.0025 5 0.0000001");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written twice")]
    fn a_family_cannot_be_written_twice() {
        let mut text = Text::new();
        text.family("a", Kind::Gauge, "A.");
        text.family("a", Kind::Gauge, "A.");
    }
}
