//! The shape of the source tree, checked so that it cannot drift:
//! every arrow between modules points down (no module uses one that uses
//! it back, directly or round a loop), siblings inside a module likewise,
//! and the module map in `lib.rs` names every module.
//!
//! An arrow is a path in code (not in comments or a `tests` module) that
//! names another module: `crate::x` from a top-level module, `super::y` or
//! `crate::x::y` from a sibling inside `x`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// A file's code: comments and its `tests` module left out.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    without_comments(text)
}

fn without_comments(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The module names `prefix` (`crate::` or `super::`) is followed by in
/// `code`, groups (`crate::{a, b::c}`) included.
fn named_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            names.insert(ident(item.trim()));
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// The top-level modules, each with the files of its tree.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.entry(name).or_default().push(path);
        } else if path.is_dir() {
            let files = modules.entry(name).or_default();
            let mut stack = vec![path];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == "rs") {
                        files.push(path);
                    }
                }
            }
        }
    }
    modules
}

/// A loop in `graph`, as `a -> b -> a`, if there is one.
fn a_loop(graph: &Graph) -> Option<String> {
    fn visit(graph: &Graph, node: &str, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<String> {
        if let Some(i) = path.iter().position(|n| n == node) {
            return Some(path[i..].iter().chain([&node.to_owned()]).cloned().collect::<Vec<_>>().join(" -> "));
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(graph, next, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}

#[test]
fn every_arrow_between_top_level_modules_points_down() {
    let modules = modules();
    let mut graph = Graph::new();
    for (name, files) in &modules {
        for file in files {
            for used in named_after(&code(file), "crate::") {
                if &used != name && modules.contains_key(&used) {
                    graph.entry(name.clone()).or_default().insert(used);
                }
            }
        }
    }
    assert!(graph.values().map(BTreeSet::len).sum::<usize>() > 40, "the arrows were not found: {graph:?}");
    if let Some(found) = a_loop(&graph) {
        panic!("modules in a loop: {found}");
    }
}

#[test]
fn every_arrow_between_sibling_modules_points_down() {
    for (parent, files) in modules() {
        let dir = src().join(&parent);
        let siblings: BTreeSet<String> = files
            .iter()
            .filter(|f| f.parent() == Some(dir.as_path()))
            .map(|f| f.file_stem().unwrap().to_str().unwrap().to_owned())
            .collect();
        let mut graph = Graph::new();
        for name in &siblings {
            let code = code(&dir.join(format!("{name}.rs")));
            let used =
                named_after(&code, "super::").into_iter().chain(named_after(&code, &format!("crate::{parent}::")));
            for used in used.filter(|u| u != name && siblings.contains(u)) {
                graph.entry(name.clone()).or_default().insert(used);
            }
        }
        if let Some(found) = a_loop(&graph) {
            panic!("modules of {parent} in a loop: {found}");
        }
    }
}

#[test]
fn the_module_map_names_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let map: String = lib.lines().filter(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
    let declared: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    assert_eq!(declared.len(), modules().len(), "lib.rs declares {declared:?}");
    let missing: Vec<&&str> = declared.iter().filter(|m| !map.contains(&format!("[`{m}`]"))).collect();
    assert!(missing.is_empty(), "the module map in lib.rs does not mention {missing:?}");
}

#[test]
fn a_loop_is_found_and_named() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert_eq!(a_loop(&graph).as_deref(), Some("a -> b -> c -> a"));
    assert_eq!(a_loop(&Graph::from([("a".to_owned(), BTreeSet::from(["b".to_owned()]))])), None);
    let code = "use crate::{config::{self, Config}, http};\nlet x = crate::metrics::Outcome::Splash; // crate::views";
    let names: Vec<String> = named_after(&without_comments(code), "crate::").into_iter().collect();
    assert_eq!(names, ["config", "http", "metrics"]);
}
