//! The source tree keeps the design's shape.
//!
//! Three crates: `kurir-protocol` (crates/protocol: the values, calls, replies and wire the
//! daemon and its web programs share), `kurir` (this one: store, pipeline, service, the
//! daemon and its command line) and `kurir-web` (crates/web: the programs `kurir-portal` and
//! `kurir-desk`). The web programs link the protocol and not the daemon: no sled, no lopdf, no
//! signing code — read from `cargo tree`.
//!
//! Inside this crate, top-level modules (one folder per stage or user surface) sit in a table
//! of layers — foundation < store < recording (receipts, operations) < the stages in their
//! direction of travel < the service < the surfaces — and import only from their own layer's
//! foundation or from lower layers; there is no cycle; and only the store opens sled. Read
//! from the source text (every `crate::a::…` and every `use crate::{a, b::{…}}`), so a new
//! import that breaks the shape fails here, named. (`crate::job`, `crate::registry` and the
//! like are the protocol's, re-exported: below every layer.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every stage may use, which themselves use no stage.
const FOUNDATION: &[&str] = &[
    "clock",
    "config",
    "fsutil",
    "pdf",
    "report_token",
    "spool",
    "worktime",
];

/// The layers, lowest first. A module imports from lower layers only (the foundation's
/// modules also from each other). The stages are in their direction of travel — intake,
/// the deliverers, the queue manager that drives them (as Postfix's qmgr drives its delivery
/// agents), proof coming back — then the service every surface goes through, then the
/// surfaces: the command line, the assembly that wires every part once (`Kurir::build`), and
/// the daemon that runs it.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", FOUNDATION),
    ("store", &["store"]),
    ("recording", &["receipt", "ops"]),
    ("intake", &["intake"]),
    ("deliverers", &["deliver"]),
    ("connection check", &["connection"]),
    ("queue manager", &["queue"]),
    ("proof coming back", &["inbound"]),
    ("service", &["service"]),
    ("command line", &["cli"]),
    ("assembly", &["assemble"]),
    ("daemon", &["daemon"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// The top-level modules a source text names after `crate::`, in both forms: a path
/// (`crate::store::Store`) and a group (`use crate::{store::Store, job::{JobId, Kommunkod}}`,
/// over several lines too). Comment lines are left out: a doc comment may name any module.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let code: String = code_lines(text).collect::<Vec<_>>().join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level items, up to its closing brace.
            let (mut depth, mut item_start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[item_start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[item_start..i]));
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

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
        for name in imported_modules(&text) {
            if name != module && modules.contains(&name) {
                entry.entry(name).or_insert_with(|| file.clone());
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
fn registrations_are_written_only_through_the_one_gate() {
    // Where decisions go changes only through the service's gate (`record_change` in
    // src/service/registry.rs), which compares the route before and after and announces any
    // difference: a new writer elsewhere would be a way around the notice.
    let tree = read_tree();
    let gate = Path::new("src/service/registry.rs");
    let mut offenders = Vec::new();
    for (module, file, text) in &tree.files {
        if module == "store" || file.ends_with(gate) {
            continue;
        }
        if code_lines(text).any(|l| l.contains(".register(") || l.contains("register_notifying(")) {
            offenders.push(file.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "registrations written outside the gate: {offenders:?}"
    );
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

#[test]
fn every_top_level_module_has_a_layer_and_imports_only_from_below() {
    let tree = read_tree();
    let mut wrong = Vec::new();
    for (module, imports) in &tree.imports {
        let Some(own) = layer_of(module) else {
            wrong.push(format!(
                "{module} has no layer: add it to LAYERS in tests/architecture.rs"
            ));
            continue;
        };
        for (other, file) in imports {
            let Some(theirs) = layer_of(other) else {
                continue;
            };
            let allowed = theirs < own || (theirs == 0 && own == 0);
            if !allowed {
                wrong.push(format!(
                    "{module} ({}) imports {other} ({}) in {}",
                    LAYERS[own].0,
                    LAYERS[theirs].0,
                    file.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn grouped_and_multi_line_imports_are_read_too() {
    let text = "use crate::{\n    store::{Store, StoreError},\n    job::JobId,\n};\n\
                // crate::cli in a comment is not an import\n\
                fn f() { crate::portal::x(); }\n";
    let found = imported_modules(text);
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(names, ["job", "portal", "store"]);
}

/// The packages `cargo tree` shows a web program linking (normal dependencies, this platform).
fn web_dependencies() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "kurir-web",
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_web_programs_link_no_store_no_pdf_parser_and_no_signing_code() {
    let names = web_dependencies();
    assert!(
        names.iter().any(|n| n == "kurir-protocol") && names.iter().any(|n| n == "axum"),
        "the tree was not read: {names:?}"
    );
    // `kurir` is the daemon's crate: the store, the spool, S/MIME signing, the deliverers.
    for banned in [
        "kurir",
        "sled",
        "lopdf",
        "mail-builder",
        "notify",
        "hickory-client",
    ] {
        assert!(
            !names.iter().any(|n| n == banned),
            "a web program links {banned}: {names:?}"
        );
    }
}

/// Every `.rs` file of the workspace's crates (this one's `src/`, and `crates/*/src/`).
fn workspace_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let src = entry.expect("entry").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    files.sort();
    files
}

#[test]
fn a_jobs_state_is_set_only_by_its_state_machine() {
    // `JobRecord`'s transitions (crates/protocol/src/state.rs) set each state with what goes
    // with it — when the job is due next, the alert marks it owes. A state set anywhere else
    // is a transition that forgets one of them. Unit tests (`tests.rs`) may set up any state.
    let machine = Path::new("crates/protocol/src/state.rs");
    let mut offenders = Vec::new();
    for file in workspace_sources() {
        if file.ends_with(machine) || file.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("source readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code_lines(code).enumerate() {
            let assigns = line.contains(".state = ") || line.contains("state: JobState::");
            if assigns {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a job's state set outside its state machine:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn a_jobs_alerts_are_raised_only_by_the_alert_writer() {
    // A step marks the alert in the job's record (`JobRecord::mark`, in the same
    // transaction); the alert writer (src/ops/alert.rs, driven by the store's index of owed
    // alerts) raises it, once, in the words of that step. An alert composed elsewhere would be
    // lost in a crash between the step and the file, or raised twice.
    let writer = Path::new("src/ops/alert.rs");
    let machine = Path::new("crates/protocol/src/state.rs");
    let mut offenders = Vec::new();
    for file in workspace_sources() {
        let text = std::fs::read_to_string(&file).expect("source readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let composes = !file.ends_with(writer) && code_lines(code).any(|l| l.contains(".compose("));
        let marks =
            !file.ends_with(machine) && code_lines(code).any(|l| l.contains("alerts.push("));
        if composes || marks {
            offenders.push(file.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "a job's alert raised or marked outside the writer and `JobRecord::mark`: {offenders:?}"
    );
}

#[test]
fn the_quick_starts_cargo_run_names_the_daemon_among_the_workspaces_programs() {
    // The workspace builds three programs; the README's first command (`cargo run --release --
    // run`) needs the top package to say which one `cargo run` means.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(
        readme.contains("cargo run --release -- run"),
        "the quick start changed"
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let package = manifest.split("\n[").next().unwrap_or("");
    assert!(
        package.contains("default-run = \"kurir\""),
        "`cargo run` cannot choose among kurir, kurir-portal and kurir-desk"
    );
}
