//! A web program's settings: only the sections it reads — its door (`[portal]` or `[desk]`),
//! the agency's contact details (`[sender]`), its log lines (`[log]`), and, to warn when it
//! could read what it must not, where the daemon keeps its store and signing key. Read from
//! the same kind of file as the daemon's (the quick start runs both from one `kurir.toml`;
//! installed, each program has its own file), sections it does not know are left alone.

use std::path::{Path, PathBuf};

use kurir_protocol::config::{ConfigError, LogSettings, SenderSettings, WebDoor, WebSettings};
use serde::{Deserialize, Serialize};

/// The sections a web program reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebConfig {
    /// The municipality portal.
    pub portal: WebSettings,
    /// The dispatch desk.
    pub desk: WebSettings,
    /// The agency's return address and contact, shown on the pages.
    pub sender: SenderSettings,
    /// Log output.
    pub log: LogSettings,
    /// The daemon's state directory: the door's socket lies in it unless set.
    pub store: StateDir,
    /// The daemon's signing key: a web program that can read it says so.
    pub smime: SigningKey,
}

/// `[store] dir`, as a web program needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StateDir {
    /// The daemon's state directory.
    pub dir: PathBuf,
}

impl Default for StateDir {
    fn default() -> Self {
        StateDir {
            dir: PathBuf::from(kurir_protocol::config::DEFAULT_STATE_DIR),
        }
    }
}

/// `[smime] sign_key`, as a web program needs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SigningKey {
    /// The agency's signing key (PEM).
    pub sign_key: PathBuf,
}

impl WebConfig {
    /// Reads the built-in defaults, then `file`, then `KURIR_<SECTION>__<KEY>` variables, and
    /// checks `door`'s section.
    pub fn load(file: Option<&Path>, door: WebDoor) -> Result<WebConfig, ConfigError> {
        if let Some(file) = file.filter(|f| f.is_file()) {
            kurir_protocol::config::check_sections(file)?;
        }
        let mut config: WebConfig = kurir_protocol::config::read(file)?;
        if let Some(folder) = file.and_then(Path::parent) {
            let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
            config.portal.resolve_from(&folder);
            config.desk.resolve_from(&folder);
            for p in [&mut config.store.dir, &mut config.smime.sign_key] {
                kurir_protocol::config::resolve_path(p, &folder);
            }
        }
        config
            .door(door)
            .check(door, &kurir_protocol::config::origin_of(file))?;
        Ok(config)
    }

    /// The settings of `door`.
    pub fn door(&self, door: WebDoor) -> &WebSettings {
        match door {
            WebDoor::Portal => &self.portal,
            WebDoor::Desk => &self.desk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config")
            .join(name)
    }

    #[test]
    fn the_installed_settings_files_of_both_programs_are_read_with_their_door() {
        let portal =
            WebConfig::load(Some(&shipped("portal.toml")), WebDoor::Portal).expect("portal.toml");
        assert_eq!(portal.portal.listen, "0.0.0.0:8443");
        assert_eq!(portal.portal.socket, Path::new("/run/kurir/portal.sock"));
        let desk = WebConfig::load(Some(&shipped("desk.toml")), WebDoor::Desk).expect("desk.toml");
        assert_eq!(desk.desk.socket, Path::new("/run/kurir-desk/desk.sock"));
    }

    #[test]
    fn the_daemons_settings_file_is_read_too_and_its_other_sections_left_alone() {
        // The quick start runs every program from one kurir.toml (with [spool], [queue] …).
        let config =
            WebConfig::load(Some(&shipped("kurir.toml")), WebDoor::Portal).expect("kurir.toml");
        assert!(
            !config.portal.enabled(),
            "the quick start serves no portal by default"
        );
        assert!(config.store.dir.ends_with("state"));
    }

    #[test]
    fn a_misspelt_section_is_refused_not_ignored() {
        let dir = std::env::temp_dir().join(format!("kurir-web-sections-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("portal.toml");
        std::fs::write(&file, "[portl]\nlisten = \"127.0.0.1:8443\"\n").expect("write");
        let refused = WebConfig::load(Some(&file), WebDoor::Portal);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(&refused, Err(ConfigError::Invalid { message, .. }) if message.contains("`portl`")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_served_door_without_its_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("kurir-web-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("desk.toml");
        std::fs::write(&file, "[desk]\nlisten = \"127.0.0.1:9443\"\n").expect("write");
        let refused = WebConfig::load(Some(&file), WebDoor::Desk);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(
                refused,
                Err(ConfigError::OutOfRange {
                    key: "desk.cert",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}
