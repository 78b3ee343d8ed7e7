//! The splash's form read as a browser reads it, and percent-encoding for
//! what a test sends; shared by the in-process tests (`common`), the
//! namespace venue (`venue`) and the scale benchmark, which include this
//! file on their own because they have no use for the rest of `common`.

#![allow(dead_code)] // each includer uses a different part of this

/// The splash's `<form method="post">`, read the way a browser reads it:
/// its action and its hidden inputs.
#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = start + html[start..].find("</form>")?;
        let form = &html[start..end];
        let open = &form[..form.find('>')?];
        if !attr(open, "method")?.eq_ignore_ascii_case("post") {
            return None;
        }
        let action = attr(open, "action").unwrap_or_else(|| "/".into());
        let fields = form
            .match_indices("<input")
            .filter_map(|(i, _)| {
                let tag = &form[i..i + form[i..].find('>')?];
                Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
            })
            .collect();
        Some(Form { action, fields })
    }

    pub fn body(&self) -> String {
        self.fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_owned())
}

/// Percent-encoding of a form value or a query parameter (everything but
/// RFC 3986's unreserved characters), for the few values a test sends.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
