//! The layers the compiler cannot see, checked from the source: every `crate::` path in
//! src/ (outside `#[cfg(test)]` modules) is an edge from its top-level module to another.
//! An edge must go down a layer or stay within one, the modules must form no cycle, and
//! inside each folder the sibling files (`super::x`, `crate::folder::x`) must form no
//! cycle either. docs/architecture.md draws the same layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may use its own layer and the ones below.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["base", "faults"]),
    ("media", &["media"]),
    ("config", &["config"]),
    (
        "pipeline",
        &["audit", "store", "ingest", "record", "detect", "playback"],
    ),
    (
        "services",
        &[
            "tls", "auth", "health", "live", "notify", "offsite", "onvif",
        ],
    ),
    ("web", &["web", "alarm"]),
    ("app", &["app", "cmds", "selftest", "tools"]),
];

fn src_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The file's text without its test module (by convention the last item of a file).
fn production_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("source is readable");
    match text.find("#[cfg(test)]\nmod ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The first path segment after each occurrence of `prefix` (`crate::` gives `store` for
/// `crate::store::Store`); a group `crate::{a, b}` gives each name.
fn segments_after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(|s| ident(s.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `src/store/db.rs` → ("store", "db"); `src/store/mod.rs` → ("store", "mod");
/// `src/health.rs` → ("health", "health").
fn module_of(path: &Path) -> (String, String) {
    let rel = path.strip_prefix(src_dir()).expect("under src");
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let top = parts[0].clone();
    let file = parts.get(1).cloned().unwrap_or_else(|| top.clone());
    (top, file)
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, members)| members.contains(&module))
}

/// Every top-level edge `from → to` with one file that makes it.
fn module_edges() -> BTreeMap<(String, String), PathBuf> {
    let mut edges = BTreeMap::new();
    for path in rust_files(&src_dir()) {
        let (top, _) = module_of(&path);
        if top == "lib" || top == "main" {
            continue;
        }
        for to in segments_after(&production_text(&path), "crate::") {
            if to != top {
                edges.entry((top.clone(), to)).or_insert(path.clone());
            }
        }
    }
    edges
}

/// A cycle in `edges`, if any, as the nodes along it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn every_module_has_a_layer_and_no_edge_goes_up() {
    let mut problems = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((from, to), file) in module_edges() {
        let (Some(lf), Some(lt)) = (layer_of(&from), layer_of(&to)) else {
            problems.push(format!("{from} or {to} has no layer (tests/it/layers.rs)"));
            continue;
        };
        if lt > lf {
            problems.push(format!(
                "{from} ({}) uses {to} ({}), a layer above it, in {}",
                LAYERS[lf].0,
                LAYERS[lt].0,
                file.display()
            ));
        }
        graph.entry(from).or_default().insert(to);
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("modules in a cycle: {}", cycle.join(" → ")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        graph.len() >= 15,
        "the scan found the modules: {:?}",
        graph.keys()
    );
}

#[test]
fn no_folder_has_a_cycle_between_its_files() {
    let mut per_folder: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for path in rust_files(&src_dir()) {
        let (top, file) = module_of(&path);
        if top == file || file == "mod" {
            continue; // a single-file module, or the folder's root
        }
        let siblings: BTreeSet<String> = rust_files(&src_dir().join(&top))
            .iter()
            .map(|p| module_of(p).1)
            .filter(|f| f != "mod")
            .collect();
        let text = production_text(&path);
        let mut used = segments_after(&text, "super::");
        used.extend(segments_after(&text, &format!("crate::{top}::")));
        let deps = per_folder
            .entry(top.clone())
            .or_default()
            .entry(file.clone())
            .or_default();
        deps.extend(
            used.into_iter()
                .filter(|u| *u != file && siblings.contains(u)),
        );
    }
    let cycles: Vec<String> = per_folder
        .iter()
        .filter_map(|(folder, g)| Some(format!("{folder}: {}", find_cycle(g)?.join(" → "))))
        .collect();
    assert!(
        cycles.is_empty(),
        "files in a cycle:\n{}",
        cycles.join("\n")
    );
    assert!(per_folder.len() >= 10, "{:?}", per_folder.keys());
}

#[test]
fn the_scan_sees_grouped_paths_and_skips_longer_names() {
    let text = "use crate::{store, ingest::Codec};\nlet x = my_crate::web::f(); crate::base::clock::wall_ms();";
    assert_eq!(
        segments_after(text, "crate::"),
        vec!["store", "ingest", "base"]
    );
}
