//! The structure the project holds to, checked on the source itself (the
//! project's README, "Architecture"): the vocabulary imports nothing of
//! ours; the sources (capture, packet, path, trace, journal) import neither the
//! analysis nor the commands; no import cycle between top-level modules;
//! only the analysis (and the vocabulary that defines them) names verdict
//! classes; no finding kind is compared as a string.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module of a source file (`src/analysis/rst.rs` → `analysis`).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).ok()?;
    let mut parts = rel.components().skip(1);
    let first = parts.next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (!matches!(name.as_str(), "main" | "lib" | "cli")).then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Code lines of a file with comments dropped (line comments and doc
/// comments; the code has no block comments).
fn code(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read source")
        .lines()
        .map(|l| l.split("//").next().unwrap_or("").to_string())
        .collect()
}

struct Source {
    path: PathBuf,
    top: String,
    lines: Vec<String>,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let top = top_module(&path)?;
            let lines = code(&path);
            Some(Source { path, top, lines })
        })
        .collect()
}

/// `crate::x` mentions per line, x ≠ the file's own module.
fn imports(s: &Source) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in &s.lines {
        let mut rest = l.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != s.top {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn the_vocabulary_imports_nothing_of_ours() {
    for s in sources().iter().filter(|s| s.top == "vocab") {
        assert!(
            imports(s).is_empty(),
            "{} imports {:?}",
            s.path.display(),
            imports(s)
        );
    }
}

#[test]
fn sources_do_not_import_the_analysis_or_the_commands() {
    let judges = ["analysis", "check", "app", "report"];
    for s in sources().iter().filter(|s| {
        matches!(
            s.top.as_str(),
            "capture" | "packet" | "path" | "trace" | "journal"
        )
    }) {
        let bad: Vec<String> = imports(s)
            .into_iter()
            .filter(|m| judges.contains(&m.as_str()))
            .collect();
        assert!(bad.is_empty(), "{} imports {bad:?}", s.path.display());
    }
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources() {
        graph.entry(s.top.clone()).or_default().extend(imports(&s));
    }
    // Depth-first search for a back edge, reporting the cycle.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
    // The graph is not empty by accident.
    assert!(graph["analysis"].contains("vocab"));
}

#[test]
fn only_the_analysis_names_verdict_classes() {
    for s in sources()
        .iter()
        .filter(|s| !matches!(s.top.as_str(), "analysis" | "vocab"))
    {
        for (i, l) in s.lines.iter().enumerate() {
            assert!(
                !l.contains("VerdictClass::"),
                "{}:{}: only the analysis decides a verdict class: {l}",
                s.path.display(),
                i + 1
            );
        }
    }
}

#[test]
fn no_finding_kind_is_compared_as_a_string() {
    for s in sources() {
        for (i, l) in s.lines.iter().enumerate() {
            let squeezed: String = l.split_whitespace().collect();
            for bad in [".kind==\"", ".kind!=\"", ".kind(),\"", "f.kind,\""] {
                assert!(
                    !squeezed.contains(bad),
                    "{}:{}: finding kinds are FindingKind values: {l}",
                    s.path.display(),
                    i + 1
                );
            }
        }
    }
}
