//! The source tree keeps the design's shape: top-level modules (one folder per stage or user
//! surface) import each other in one direction only, the foundation imports no stage, and only
//! the store opens sled. Read from the source text, so a new import that breaks the shape fails
//! here with the cycle named, not later as a tangle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every stage may use, which themselves use no stage.
const FOUNDATION: &[&str] = &["config", "digest", "fsutil", "job", "spool", "worktime"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library's top-level module a file belongs to (`src/store/jobs.rs` → `store`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Code lines only: comments and doc comments may name any module.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

struct Tree {
    /// Module → the modules it names as `crate::…`, with one file that does.
    imports: BTreeMap<String, BTreeMap<String, PathBuf>>,
    files: Vec<(String, PathBuf, String)>,
}

fn read_tree() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
    let mut tree = Tree {
        imports: BTreeMap::new(),
        files: Vec::new(),
    };
    for file in files {
        let Some(module) = top_module(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("source readable");
        let entry = tree.imports.entry(module.clone()).or_default();
        for line in code_lines(&text) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != module && modules.contains(&name) {
                    entry.entry(name).or_insert_with(|| file.clone());
                }
            }
        }
        tree.files.push((module, file, text));
    }
    tree
}

/// A cycle through `start`, if there is one, as the list of modules on it.
fn cycle_from(
    imports: &BTreeMap<String, BTreeMap<String, PathBuf>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in imports.get(&module).into_iter().flat_map(|m| m.keys()) {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn top_level_modules_import_each_other_in_one_direction_only() {
    let tree = read_tree();
    assert!(
        tree.imports.len() >= 10,
        "the tree was not read: {:?}",
        tree.imports.keys()
    );
    for module in tree.imports.keys() {
        if let Some(cycle) = cycle_from(&tree.imports, module) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    format!(
                        "{} → {} ({})",
                        w[0],
                        w[1],
                        tree.imports[&w[0]][&w[1]].display()
                    )
                })
                .collect();
            panic!("import cycle:\n  {}", steps.join("\n  "));
        }
    }
}

#[test]
fn the_foundation_imports_no_stage() {
    let tree = read_tree();
    for module in FOUNDATION {
        let imports = tree
            .imports
            .get(*module)
            .unwrap_or_else(|| panic!("no module {module}"));
        for (other, file) in imports {
            assert!(
                FOUNDATION.contains(&other.as_str()),
                "{module} imports the stage {other} ({}); the foundation must not",
                file.display()
            );
        }
    }
}

#[test]
fn only_the_store_opens_sled() {
    let tree = read_tree();
    let mut offenders = Vec::new();
    for (module, file, text) in &tree.files {
        if module == "store" {
            continue;
        }
        if code_lines(text).any(|l| l.contains("sled::") || l.contains("open_tree")) {
            offenders.push(file.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "sled used outside src/store/: {offenders:?}"
    );
}
