//! Manual pages and shell completions, generated from the command line's own definition
//! ([`super::Cli`], with clap_mangen and clap_complete) so they cannot drift from `--help`,
//! and `kurir.toml(5)` from `config/kurir.toml`, the file that documents every setting (and
//! that a test keeps equal to the built-in defaults). `cargo run --example docs -- DIR` writes
//! them for the Debian package.

use clap::CommandFactory;

/// The settings file as shipped, the source of `kurir.toml(5)`.
pub const CONFIG_TOML: &str = include_str!("../../config/kurir.toml");

/// `kurir(1)` and one page per subcommand at every level (`kurir-municipality-set(1)`), as
/// (file name, roff) pairs.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = super::Cli::command();
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, "kurir", &mut pages);
    pages
}

fn collect(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let page_cmd = cmd
        .clone()
        .name(name.to_string())
        .display_name(name.to_string());
    let mut out = Vec::new();
    if clap_mangen::Man::new(page_cmd)
        .title(name.to_ascii_uppercase())
        .section("1")
        .manual("kurir")
        .render(&mut out)
        .is_ok()
    {
        pages.push((format!("{name}.1"), out));
    }
    // clap's own `help` subcommand gets no page: `--help` is described on every page.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}

/// Completions for `shell` (bash, zsh, fish, …).
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kurir", &mut out);
    out
}

/// Escapes text for roff: backslashes, and a leading dot or quote that would start a request.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// `kurir.toml(5)`: every section and key of `config/kurir.toml` with its default and the
/// comment above it.
pub fn config_man_page() -> Vec<u8> {
    let mut out = String::from(
        ".TH KURIR.TOML 5 \"\" \"kurir\" \"kurir\"\n\
         .SH NAME\nkurir.toml \\- settings of kurir, the decision delivery daemon\n\
         .SH SYNOPSIS\n/etc/kurir/kurir.toml\n\
         .SH DESCRIPTION\nkurir reads its settings from built\\-in defaults, then this TOML file \
         (\\fB\\-\\-config\\fR, or \\fBKURIR_CONFIG\\fR), then environment variables \
         \\fBKURIR_\\fISECTION\\fB__\\fIKEY\\fR. Unknown keys are an error. Every setting and its \
         default follows.\n",
    );
    let mut comment: Vec<String> = Vec::new();
    for line in CONFIG_TOML.lines() {
        let line = line.trim();
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim().to_string());
        } else if line.starts_with('[') {
            out.push_str(&format!(".SH {}\n", roff_text(line)));
            if !comment.is_empty() {
                out.push_str(&format!("{}\n", roff_text(&comment.join(" "))));
            }
            comment.clear();
        } else if let Some((key, value)) = line.split_once('=') {
            out.push_str(&format!(
                ".TP\n\\fB{}\\fR = {}\n{}\n",
                roff_text(key.trim()),
                roff_text(value.trim()),
                roff_text(&comment.join(" "))
            ));
            comment.clear();
        } else if line.is_empty() && !comment.is_empty() {
            out.push_str(&format!(".PP\n{}\n", roff_text(&comment.join(" "))));
            comment.clear();
        }
    }
    out.push_str(".SH SEE ALSO\n\\fBkurir\\fR(1)\n");
    out.into_bytes()
}
