//! The source layout: no two files of a crate import each other, directly or round a loop.
//!
//! Every `crate::…`, `super::…` and `self::…` path in a file (in `use` declarations and in
//! code, comments left out) is resolved to the deepest module file it names; a path into one
//! of the file's own ancestors (a module's `mod.rs` holds what its children share) is not
//! counted. Test modules are left out: they import what they test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the supervisor crate sits in the workspace")
        .to_path_buf()
}

/// Every `.rs` file under `src`, by module path (`a/b.rs` and `a/b/mod.rs` are both `a::b`).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source folder") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

/// The file's text without comments and without a trailing `#[cfg(test)] mod tests { … }`.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable source file");
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `crate::…`, `super::…` and `self::…` in `code`, with one level of `{a, b::c}`
/// groups expanded, each as its root keyword and segments.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root).map(|i| i + from) {
            from = at + root.len();
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                continue;
            }
            let keyword = root.trim_end_matches(':').to_string();
            let rest = &code[from..];
            let mut segments = Vec::new();
            let mut tail = rest;
            loop {
                let n = tail
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                if n == 0 {
                    break;
                }
                segments.push(tail[..n].to_string());
                match tail[n..].strip_prefix("::") {
                    Some(next) => tail = next,
                    None => {
                        tail = &tail[n..];
                        break;
                    }
                }
            }
            if let Some(group) = tail.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let mut full = segments.clone();
                    full.extend(
                        item.trim()
                            .split("::")
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty() && s != "self"),
                    );
                    out.push((keyword.clone(), full));
                }
            } else {
                out.push((keyword, segments));
            }
        }
    }
    out
}

/// Which module files each module file of `src` imports.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = modules(src);
    let mut graph = BTreeMap::new();
    for (module, path) in &files {
        if module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let mut deps = BTreeSet::new();
        for (root, segments) in paths(&code_of(path)) {
            let base: Module = match root.as_str() {
                "crate" => Vec::new(),
                "super" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.clone(),
            };
            let mut target = None;
            for n in 0..=segments.len() {
                let mut candidate = base.clone();
                candidate.extend_from_slice(&segments[..n]);
                if files.contains_key(&candidate) {
                    target = Some(candidate);
                }
            }
            if let Some(target) = target {
                let ancestor = module.starts_with(&target);
                if !ancestor {
                    deps.insert(target);
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// The import loops of `graph`, each as the modules round it.
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    fn visit(
        at: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, bool>,
        stack: &mut Vec<Module>,
        found: &mut Vec<Vec<Module>>,
    ) {
        state.insert(at.clone(), true);
        stack.push(at.clone());
        for next in graph.get(at).into_iter().flatten() {
            match state.get(next) {
                Some(true) => {
                    let start = stack.iter().position(|m| m == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    found.push(cycle);
                }
                Some(false) => {}
                None => visit(next, graph, state, stack, found),
            }
        }
        stack.pop();
        state.insert(at.clone(), false);
    }
    let mut state = BTreeMap::new();
    let mut found = Vec::new();
    for module in graph.keys() {
        if !state.contains_key(module) {
            visit(module, graph, &mut state, &mut Vec::new(), &mut found);
        }
    }
    found
}

#[test]
fn no_source_files_import_each_other() {
    let root = workspace();
    let mut loops = Vec::new();
    for krate in ["shared", "worker", "supervisor"] {
        let graph = graph(&root.join(krate).join("src"));
        assert!(graph.len() > 5, "{krate}: the source files were not found");
        for cycle in cycles(&graph) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            loops.push(format!("{krate}: {}", names.join(" -> ")));
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn the_layout_check_sees_a_loop_and_a_grouped_import() {
    let dir = std::env::temp_dir().join(format!("isolate-layout-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).expect("temporary folder");
    let files = [
        ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\nmod f;\n"),
        ("a/mod.rs", "pub mod inner;\n"),
        ("a/inner.rs", "use crate::b::Thing; // crate::f::Nothing\n"),
        ("b.rs", "use super::{c::One, d};\n"),
        ("c.rs", "pub fn go() { crate::a::inner::run() }\n"),
        ("d.rs", "use super::a;\n"),
        ("e.rs", ""),
        ("f.rs", "use crate::e;\n"),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("temporary file");
    }
    let graph = graph(&src);
    let module = |s: &str| s.split("::").map(String::from).collect::<Module>();
    assert_eq!(
        graph[&module("b")],
        BTreeSet::from([module("c"), module("d")]),
        "a grouped import names both files"
    );
    assert!(
        !graph[&module("a::inner")].contains(&module("f")),
        "comments do not count"
    );
    let found = cycles(&graph);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(found.len(), 1, "{found:?}");
    let names: BTreeSet<String> = found[0].iter().map(|m| m.join("::")).collect();
    assert_eq!(
        names,
        BTreeSet::from(["a::inner".into(), "b".into(), "c".into()])
    );
}
