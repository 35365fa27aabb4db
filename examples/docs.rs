//! Writes kurir's manual pages (`man1/`, `man5/`) and shell completions (`completions/`) into
//! a directory, for the Debian package: `cargo run --example docs -- target/docs`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/docs".into()),
    );
    let man1 = dir.join("man1");
    let man5 = dir.join("man5");
    let completions = dir.join("completions");
    for d in [&man1, &man5, &completions] {
        std::fs::create_dir_all(d)?;
    }
    for (name, page) in kurir::cli::docs::man_pages() {
        std::fs::write(man1.join(name), page)?;
    }
    std::fs::write(
        man5.join("kurir.toml.5"),
        kurir::cli::docs::config_man_page(),
    )?;
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "kurir"),
        (Shell::Zsh, "_kurir"),
        (Shell::Fish, "kurir.fish"),
    ] {
        std::fs::write(completions.join(file), kurir::cli::docs::completions(shell))?;
    }
    println!("{}", dir.display());
    Ok(())
}
