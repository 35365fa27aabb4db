//! The manual pages and completions are generated from the same clap definition as `--help`,
//! so they cannot drift: every subcommand has a page, and every option `--help` lists is on
//! it. A build check, not a copy.

mod common;

use std::collections::BTreeMap;

use common::Env;

/// The long options (`--name`) a help text lists.
fn long_options(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_subcommand_has_a_man_page_listing_every_option_its_help_lists() {
    let env = Env::new();
    let pages: BTreeMap<String, String> = kurir::cli::docs::man_pages()
        .into_iter()
        .map(|(name, roff)| {
            (
                name,
                String::from_utf8(roff).expect("utf-8").replace("\\-", "-"),
            )
        })
        .collect();
    assert!(pages.contains_key("kurir.1"), "{:?}", pages.keys());
    // Walk the command tree as a user would, through `--help`.
    let mut todo = vec![Vec::<String>::new()];
    let mut checked = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = env.ok(&args);
        let page_name = if path.is_empty() {
            "kurir.1".to_string()
        } else {
            format!("kurir-{}.1", path.join("-"))
        };
        let page = pages
            .get(&page_name)
            .unwrap_or_else(|| panic!("no man page {page_name} for `kurir {}`", path.join(" ")));
        for option in long_options(&help) {
            assert!(
                page.contains(&format!("--{option}")),
                "{page_name} lacks --{option}, which `kurir {} --help` lists",
                path.join(" ")
            );
        }
        // The summary line, its first words (roff escapes quotes and may break lines).
        let about: String = help
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        let flat = page
            .replace("\\*(Aq", "'")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            flat.contains(&about),
            "{page_name} lacks the summary {about:?}"
        );
        // Subcommands, from the "Commands:" block of the help text.
        if let Some(block) = help.split("Commands:\n").nth(1) {
            for line in block.lines().take_while(|l| l.starts_with("  ")) {
                let name = line.split_whitespace().next().unwrap_or("");
                if !name.is_empty()
                    && name != "help"
                    && line.starts_with("  ")
                    && !line.starts_with("   ")
                {
                    let mut sub = path.clone();
                    sub.push(name.to_string());
                    todo.push(sub);
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} commands walked");
    let config = String::from_utf8(kurir::cli::docs::config_man_page()).expect("utf-8");
    for section in ["[spool]", "[smtp]", "[proof]", "[ops]"] {
        assert!(
            config.contains(&format!(".SH {section}")),
            "kurir.toml(5) lacks {section}"
        );
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let script = String::from_utf8(kurir::cli::docs::completions(shell)).expect("utf-8");
        assert!(
            script.contains("municipality") && script.contains("anvisningsbeslut"),
            "{shell} completion lacks commands"
        );
    }
}
