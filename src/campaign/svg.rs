//! The check of a campaign's SVG image: a static drawing and nothing else.
//!
//! An SVG is a document that can run script, load other files and follow
//! links, and a campaign's image is served from the portal's own origin,
//! where a script would act as the portal. So the image is parsed as XML
//! (no DTD, hence no entities) and every element and attribute, named by
//! namespace URI and local name, never by prefix, must be on the allowlists
//! below: shapes, text, gradients, clips, masks, patterns and `use` of a part
//! of the same image, and a drawing program's own data (Inkscape's, an RDF
//! licence block). Anything else (script, `foreignObject`, animation, links,
//! images, `<style>`, event handlers, a reference to another file) is
//! refused, naming the first offending thing with its line and column.
//!
//! The router also serves every campaign image under a sandboxing
//! Content-Security-Policy: each of the two holds without the other.
//!
//! [`audit`] is the property the `svg` fuzz target asserts of every image
//! [`check`] accepts: a second, independent look for what must never pass.

use roxmltree::{Attribute, Document, Node, NodeType, ParsingOptions};

const SVG: &str = "http://www.w3.org/2000/svg";
const XLINK: &str = "http://www.w3.org/1999/xlink";
const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Namespaces of a drawing program's own data: Inkscape's, and the RDF
/// licence block Inkscape and others write in `<metadata>`. A browser
/// neither draws nor runs an element or attribute in them, so an image
/// saved as it came from the editor passes; what they hold is checked like
/// everything else (an XHTML script inside one is still refused).
const EDITOR: &[&str] = &[
    "http://www.inkscape.org/namespaces/inkscape",
    "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://purl.org/dc/elements/1.1/",
    "http://creativecommons.org/ns#",
    "http://web.resource.org/cc/",
];

/// Elements of the SVG namespace that only draw. Not here, so refused:
/// `script`, `foreignObject`, `a`, `image`, `animate*`, `set`, `mpath`,
/// `filter` (its `feImage` loads files), `switch`, `view`, `font-face-uri`
/// and `style`: CSS loads files in more ways than `url(` (`@import "x"`,
/// `image-set("x")`, `src("x")`, `@font-face`) and its escapes (`u\72l(`)
/// hide any spelling from a plain text test, so a `<style>` sheet would
/// need a whole CSS parser to judge. Presentation attributes and `style=""`
/// draw the same, and their values are checked by [`value_problem`].
const ELEMENTS: &[&str] = &[
    "svg",
    "g",
    "defs",
    "title",
    "desc",
    "metadata",
    "symbol",
    "use",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "textPath",
    "linearGradient",
    "radialGradient",
    "stop",
    "clipPath",
    "mask",
    "pattern",
    "marker",
];

/// Attributes in no namespace, besides `href` (only `#id`, see
/// [`href_problem`]). None starts with `on`; none names a file.
const ATTRIBUTES: &[&str] = &[
    // The document and accessibility.
    "id",
    "class",
    "style",
    "lang",
    "version",
    "baseProfile",
    "role",
    "aria-label",
    "aria-labelledby",
    "aria-describedby",
    "aria-hidden",
    // Geometry.
    "x",
    "y",
    "width",
    "height",
    "viewBox",
    "preserveAspectRatio",
    "d",
    "points",
    "pathLength",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "x1",
    "y1",
    "x2",
    "y2",
    "fx",
    "fy",
    "fr",
    "dx",
    "dy",
    "rotate",
    "textLength",
    "lengthAdjust",
    "startOffset",
    "method",
    "spacing",
    "side",
    "transform",
    "transform-origin",
    // Gradients, patterns, clips, masks and markers.
    "offset",
    "gradientUnits",
    "gradientTransform",
    "spreadMethod",
    "patternUnits",
    "patternContentUnits",
    "patternTransform",
    "clipPathUnits",
    "maskUnits",
    "maskContentUnits",
    "markerWidth",
    "markerHeight",
    "markerUnits",
    "refX",
    "refY",
    "orient",
    // Presentation.
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-miterlimit",
    "stroke-dasharray",
    "stroke-dashoffset",
    "stroke-opacity",
    "opacity",
    "stop-color",
    "stop-opacity",
    "clip-path",
    "clip-rule",
    "mask",
    "marker-start",
    "marker-mid",
    "marker-end",
    "color",
    "display",
    "visibility",
    "overflow",
    "paint-order",
    "vector-effect",
    "shape-rendering",
    "text-rendering",
    "color-interpolation",
    "mix-blend-mode",
    "isolation",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "font-variant",
    "font-stretch",
    "text-anchor",
    "text-decoration",
    "dominant-baseline",
    "alignment-baseline",
    "baseline-shift",
    "letter-spacing",
    "word-spacing",
    "writing-mode",
    "direction",
    "unicode-bidi",
];

/// Checks that `bytes` are an SVG image that only draws; the error names
/// the first thing refused and where it is.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("is not UTF-8 (byte {})", e.valid_up_to()))?;
    // `allow_dtd: false` is roxmltree's default, spelled out: any DOCTYPE is
    // refused, so no entity can expand or name another file.
    let options = ParsingOptions { allow_dtd: false, ..ParsingOptions::default() };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => "has a DOCTYPE, which an image may not carry".to_owned(),
        e => format!("is not well-formed XML: {e}"),
    })?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(SVG) || root.tag_name().name() != "svg" {
        return Err(format!(
            "the root element <{}> is not <svg xmlns=\"{SVG}\"> {}",
            element_name(text, root),
            at(&doc, root.range().start)
        ));
    }
    for node in doc.descendants() {
        match node.node_type() {
            NodeType::Element => check_element(&doc, text, node)?,
            NodeType::PI => {
                return Err(format!(
                    "the processing instruction <?{}?> is not allowed {}",
                    pi_target(node),
                    at(&doc, node.range().start)
                ));
            }
            NodeType::Root | NodeType::Text | NodeType::Comment => {}
        }
    }
    Ok(())
}

fn check_element(doc: &Document, text: &str, node: Node) -> Result<(), String> {
    let name = node.tag_name();
    let here = || at(doc, node.range().start);
    match name.namespace() {
        Some(SVG) if ELEMENTS.contains(&name.name()) => {}
        Some(ns) if EDITOR.contains(&ns) => {}
        Some(SVG) => {
            // Drawing programs often export a sheet of classes: say what would do.
            let instead =
                if name.name() == "style" { "; set fill=, stroke= or style= on the elements instead" } else { "" };
            return Err(format!("element <{}> is not allowed {}{instead}", element_name(text, node), here()));
        }
        Some(other) => {
            return Err(format!(
                "element <{}> is in the namespace {other}, not SVG's {}",
                element_name(text, node),
                here()
            ));
        }
        None => return Err(format!("element <{}> is in no namespace, not SVG's {}", element_name(text, node), here())),
    }
    for attribute in node.attributes() {
        check_attribute(doc, text, node, &attribute)?;
    }
    Ok(())
}

fn check_attribute(doc: &Document, text: &str, node: Node, attribute: &Attribute) -> Result<(), String> {
    let local = attribute.name();
    let shown = text.get(attribute.range_qname()).unwrap_or(local);
    let element = element_name(text, node);
    let here = || at(doc, attribute.range().start);
    if local.get(..2).is_some_and(|start| start.eq_ignore_ascii_case("on")) {
        return Err(format!("the event handler {shown}= on <{element}> is not allowed {}", here()));
    }
    let value = attribute.value();
    let allowed = match (attribute.namespace(), local) {
        (None | Some(XLINK), "href") => {
            if let Some(problem) = href_problem(value) {
                return Err(format!("{shown}={value:?} on <{element}> {problem} {}", here()));
            }
            true
        }
        // An editor's element is drawn by no one, whatever its attributes.
        (None, _) => ATTRIBUTES.contains(&local) || node.tag_name().namespace().is_some_and(|ns| EDITOR.contains(&ns)),
        (Some(XML), "space" | "lang") => true,
        (Some(ns), _) => EDITOR.contains(&ns),
    };
    if !allowed {
        return Err(format!("attribute {shown}= on <{element}> is not allowed {}", here()));
    }
    if let Some(problem) = value_problem(value) {
        return Err(format!("{shown}= on <{element}> {problem} {}", here()));
    }
    Ok(())
}

/// A reference may only point inside the image itself.
fn href_problem(value: &str) -> Option<&'static str> {
    (!value.starts_with('#')).then_some("must refer to a part of the same image (#id)")
}

/// What is wrong with an attribute's value (already unescaped by the XML
/// parser: `&#117;rl(` arrives as `url(`), if anything. Every value is
/// judged as CSS may read it, because presentation attributes and `style`
/// are parsed as CSS.
fn value_problem(value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    if lower.contains("javascript:") {
        return Some("holds javascript:");
    }
    // A CSS escape can spell `url(` or any other name without its letters.
    if lower.contains('\\') {
        return Some("holds a backslash (a CSS escape)");
    }
    // Both take a file name as a plain string, without `url(`.
    if lower.contains("image-set(") || lower.contains("src(") {
        return Some("holds image-set( or src(, which load files");
    }
    // `url(#id)` is a part of the same image; anything else names a file.
    if lower.match_indices("url(").any(|(i, _)| !lower[i + "url(".len()..].starts_with('#')) {
        return Some("holds a url( other than url(#id)");
    }
    None
}

/// The property the `svg` fuzz target asserts of every image [`check`]
/// accepts, judged independently of the allowlists: the image parses, and
/// no element in any namespace is `script`, `foreignObject`, `iframe`,
/// `object`, `embed`, `a`, `set` or `animate*` (case aside); no attribute
/// is an event handler (`on*`); no value holds `javascript:` or a `url(`
/// other than `url(#`; and every `href`, in any namespace, starts with `#`.
/// The error names the first breach.
pub fn audit(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8".to_owned())?;
    let doc = Document::parse(text).map_err(|e| format!("does not parse: {e}"))?;
    for node in doc.descendants().filter(Node::is_element) {
        let name = node.tag_name().name().to_ascii_lowercase();
        let forbidden = ["script", "foreignobject", "iframe", "object", "embed", "a", "set"];
        if forbidden.contains(&name.as_str()) || name.starts_with("animate") {
            return Err(format!("element {name}"));
        }
        for attribute in node.attributes() {
            let local = attribute.name().to_ascii_lowercase();
            let value = attribute.value().to_ascii_lowercase();
            if local.starts_with("on") {
                return Err(format!("event handler {local}"));
            }
            if value.contains("javascript:") {
                return Err(format!("{local}={value:?} holds javascript:"));
            }
            if value.match_indices("url(").any(|(i, _)| !value[i + 4..].starts_with('#')) {
                return Err(format!("{local}={value:?} holds a url( to another file"));
            }
            if local == "href" && !value.starts_with('#') {
                return Err(format!("href={value:?} leaves the image"));
            }
        }
    }
    Ok(())
}

/// An element's name as the file spells it (`s:script`), for messages.
fn element_name<'a>(text: &'a str, node: Node<'_, 'a>) -> &'a str {
    let tag = text.get(node.range().start + 1..).unwrap_or("");
    let end = tag.find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>').unwrap_or(tag.len());
    if end == 0 { node.tag_name().name() } else { &tag[..end] }
}

fn pi_target<'a>(node: Node<'a, '_>) -> &'a str {
    node.pi().map_or("", |pi| pi.target)
}

/// `(line 1, column 41)`: where byte `pos` of the image is.
fn at(doc: &Document, pos: usize) -> String {
    let pos = doc.text_pos_at(pos);
    format!("(line {}, column {})", pos.row, pos.col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGO: &[u8] = include_bytes!("../../assets/campaigns/bluezone/images/logo.svg");
    const BYPASS: &str = r#"<svg xmlns="http://www.w3.org/2000/svg"><s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script></svg>"#;

    fn refusal(svg: &str) -> String {
        let e = check(svg.as_bytes()).expect_err(svg);
        assert!(e.contains("(line ") || e.starts_with("is not") || e.starts_with("has a DOCTYPE"), "{e}");
        e
    }

    /// An SVG whose root declares the SVG (and xlink) namespaces.
    fn svg(inner: &str) -> String {
        format!(r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{inner}</svg>"#)
    }

    #[test]
    fn a_prefixed_script_is_refused_by_namespace_not_by_spelling() {
        // The substring filter this check replaced let this through.
        assert_eq!(refusal(BYPASS), "element <s:script> is not allowed (line 1, column 41)");
        let bare = r#"<s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script>"#;
        assert!(refusal(bare).starts_with("the root element <s:script> is not <svg"));
    }

    #[test]
    fn script_handlers_and_foreign_content_are_refused() {
        for (svg, wanted) in [
            (svg(r#"<script>alert(1)</script>"#), "element <script> is not allowed"),
            (svg(r#"<foreignObject><p>x</p></foreignObject>"#), "element <foreignObject> is not allowed"),
            (svg(r##"<a href="#x"><rect width="1" height="1"/></a>"##), "element <a> is not allowed"),
            (svg(r#"<image href="http://example.invalid/x.png"/>"#), "element <image> is not allowed"),
            (svg(r#"<set attributeName="href" to="javascript:alert(1)"/>"#), "element <set> is not allowed"),
            (svg(r#"<animate attributeName="x" to="1"/>"#), "element <animate> is not allowed"),
            (svg(r#"<style>@import url(http://example.invalid/x.css);</style>"#), "element <style> is not allowed"),
            (
                r#"<svg xmlns="http://www.w3.org/2000/svg"><g xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></g></svg>"#.to_owned(),
                "element <g> is in the namespace http://www.w3.org/1999/xhtml, not SVG's (line 1, column 41)",
            ),
            (r#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_owned(), "the event handler onload= on <svg>"),
            (r#"<svg xmlns="http://www.w3.org/2000/svg" ONLOAD="alert(1)"/>"#.to_owned(), "the event handler ONLOAD= on <svg>"),
            (svg(r#"<rect h:onclick="x" xmlns:h="http://www.w3.org/1999/xhtml"/>"#), "the event handler h:onclick="),
        ] {
            let e = refusal(&svg);
            assert!(e.contains(wanted), "{svg}: {e}");
        }
    }

    #[test]
    fn references_may_only_point_inside_the_image() {
        for (svg, wanted) in [
            (
                svg(r#"<use href="http://x/#a"/>"#),
                "href=\"http://x/#a\" on <use> must refer to a part of the same image",
            ),
            (
                svg(r#"<use xlink:href="javascript:alert(1)"/>"#),
                "xlink:href=\"javascript:alert(1)\" on <use> must refer",
            ),
            (svg(r##"<use href="#a" x="javascript:1"/>"##), "x= on <use> holds javascript:"),
            (svg(r#"<rect style="background:url(http://x)"/>"#), "style= on <rect> holds a url( other than url(#id)"),
            (svg(r#"<rect fill="URL(http://x)"/>"#), "fill= on <rect> holds a url("),
            (svg(r#"<rect fill="&#117;rl(http://x)"/>"#), "fill= on <rect> holds a url("),
            (svg(r#"<rect style="fill:u\72l(http://x)"/>"#), "holds a backslash"),
            (svg(r#"<rect style="fill:image-set('http://x' 1x)"/>"#), "holds image-set("),
            (svg(r#"<rect xml:base="http://x/"/>"#), "attribute xml:base= on <rect> is not allowed"),
            (svg(r#"<rect p:fill="red" xmlns:p="urn:x"/>"#), "attribute p:fill= on <rect> is not allowed"),
            (svg(r#"<rect target="_top"/>"#), "attribute target= on <rect> is not allowed (line 1, column 90)"),
        ] {
            let e = refusal(&svg);
            assert!(e.contains(wanted), "{svg}: {e}");
        }
    }

    #[test]
    fn documents_that_are_not_a_plain_svg_are_refused() {
        let entity = r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "<script>alert(1)</script>">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>"#;
        assert_eq!(refusal(entity), "has a DOCTYPE, which an image may not carry");
        assert!(refusal("<svg><rect/></svg>").starts_with("the root element <svg> is not <svg xmlns="));
        assert!(refusal(r#"<html xmlns="http://www.w3.org/1999/xhtml"/>"#).starts_with("the root element <html>"));
        assert!(
            refusal(r#"<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>"#).starts_with("is not well-formed XML")
        );
        assert!(refusal("").starts_with("is not well-formed XML"));
        let stylesheet = r#"<?xml-stylesheet href="http://x/s.css"?><svg xmlns="http://www.w3.org/2000/svg"/>"#;
        assert_eq!(
            refusal(stylesheet),
            "the processing instruction <?xml-stylesheet?> is not allowed (line 1, column 1)"
        );
        assert_eq!(check(b"<svg \xff/>").unwrap_err(), "is not UTF-8 (byte 5)");
    }

    #[test]
    fn drawings_with_gradients_text_and_internal_references_are_accepted() {
        // Also a fuzz seed: gradients, a clip, `use` by `href` and by
        // `xlink:href`, text with `xml:space`, a comment, the XML declaration.
        let drawing = include_bytes!("../../fuzz/seeds/svg/accepted-gradient-use.svg");
        for svg in [LOGO, drawing] {
            check(svg).unwrap();
            audit(svg).unwrap();
        }
    }

    #[test]
    fn a_drawing_program_s_own_data_passes_and_what_it_holds_is_still_checked() {
        // As Inkscape saves a drawing: its namespaces, a named view and a
        // licence block in <metadata>.
        check(include_bytes!("../../fuzz/seeds/svg/accepted-inkscape.svg")).unwrap();
        const SODIPODI: &str = r#"xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd""#;
        for (inner, wanted) in [
            (
                r#"<sodipodi:namedview><h:script xmlns:h="http://www.w3.org/1999/xhtml">alert(1)</h:script></sodipodi:namedview>"#,
                "element <h:script> is in the namespace http://www.w3.org/1999/xhtml",
            ),
            (r#"<sodipodi:namedview onload="alert(1)"/>"#, "the event handler onload= on <sodipodi:namedview>"),
            (r#"<g sodipodi:x="url(http://x/)"/>"#, "sodipodi:x= on <g> holds a url("),
            (r#"<metadata><script>alert(1)</script></metadata>"#, "element <script> is not allowed"),
        ] {
            let e = refusal(&format!(r#"<svg xmlns="http://www.w3.org/2000/svg" {SODIPODI}>{inner}</svg>"#));
            assert!(e.contains(wanted), "{inner}: {e}");
        }
    }

    /// The fuzz target's seeds, run here too, because CI runs no fuzzer:
    /// every seed named `refused-*` is refused, and every seed accepted
    /// passes the audit.
    #[test]
    fn the_fuzz_seeds_are_judged_and_every_accepted_one_passes_the_audit() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/svg");
        let mut refused = 0;
        for entry in std::fs::read_dir(&seeds).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            match check(&bytes) {
                Ok(()) => {
                    assert!(!name.starts_with("refused-"), "{name} was accepted");
                    audit(&bytes).unwrap_or_else(|e| panic!("{name} was accepted but holds {e}"));
                }
                Err(_) if name.starts_with("refused-") => refused += 1,
                Err(e) => panic!("{name} was refused: {e}"),
            }
        }
        assert!(refused >= 10, "only {refused} refused-* seeds in {}", seeds.display());
    }
}
