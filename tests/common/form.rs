//! The splash's form read as a browser reads it; shared by the in-process
//! tests (`common`) and the namespace venue (`venue`), which includes this
//! file on its own because it has no use for the rest of `common`.

#![allow(dead_code)] // the venue encodes its own form body

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
