//! The settings the daemon and its web programs share: the two web doors (`[portal]`,
//! `[desk]`), the agency's return address (`[sender]`), log lines (`[log]`), and how a
//! settings file and `KURIR_<SECTION>__<KEY>` variables are read over built-in defaults.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The daemon's state directory when none is set (`[store] dir`): `state` beside the settings
/// file, or in the working directory when no file is read (the quick start).
pub const DEFAULT_STATE_DIR: &str = "state";

/// The name (`--config none`, `KURIR_CONFIG=none`) that asks for no settings file at all: the
/// built-in defaults and the environment.
pub const NO_FILE: &str = "none";

/// `[sender]`: Migrationsverket's return address and contact for the municipalities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderSettings {
    /// Authority name.
    pub name: String,
    /// Unit within the authority.
    pub unit: String,
    /// Street or box line.
    pub street: String,
    /// Postnummer, `nnn nn`.
    pub postnummer: String,
    /// Postort.
    pub postort: String,
    /// Telephone for questions about a decision.
    pub phone: String,
    /// Office hours for that telephone.
    pub phone_hours: String,
    /// E-mail for questions about a decision.
    pub email: String,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            name: "Migrationsverket".into(),
            unit: "Bosättningsenheten".into(),
            street: "Box 413".into(),
            postnummer: "901 08".into(),
            postort: "Umeå".into(),
            phone: "010-485 52 11".into(),
            phone_hours: "vardagar 09.00–12.00".into(),
            email: "ensamkommandebarn-rapport@migrationsverket.se".into(),
        }
    }
}

/// `[portal]` and `[desk]`: the two web doors, each its own program and OS user — the
/// municipality portal (`kurir-portal`, for municipality IT) and the dispatch desk
/// (`kurir-desk`, for the agency's staff). Both serve HTTPS with client certificates (SITHS)
/// only, and each asks the daemon through a socket of its own, which answers only its user
/// and only what its people may ask: a compromised portal cannot send a decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Address the program serves on, e.g. `0.0.0.0:8443`. Empty: not served (the default).
    pub listen: String,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CAs whose person certificates may sign in (PEM; in production the SITHS e-id root
    /// and issuing CAs). A certificate from any other CA, or none, gets no page at all.
    pub client_ca: PathBuf,
    /// The daemon's socket for this door. Empty: `portal.sock` or `desk.sock` in the state
    /// directory (the quick start, where all run as one user); installed:
    /// `/run/kurir/portal.sock` and `/run/kurir-desk/desk.sock`, each reached by its
    /// program's user through its folder's group.
    pub socket: PathBuf,
    /// The program's OS user. When set, the daemon takes requests on this door's socket only
    /// from this user (checked by the socket peer's credentials) and opens the socket to the
    /// folder's group; empty: any user who can reach the socket file.
    pub user: String,
    /// Certificate revocation lists (PEM or DER) checked at every handshake, for every
    /// certificate of the chain; read again when a file changes. SITHS publishes them.
    pub crl: Vec<PathBuf>,
}

/// Which of the two web doors a [`WebSettings`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebDoor {
    /// The municipality portal: municipality IT and their registrations.
    Portal,
    /// The dispatch desk: the agency's staff and their decisions.
    Desk,
}

impl WebDoor {
    /// The settings section, as named in errors.
    pub fn section(self) -> &'static str {
        match self {
            WebDoor::Portal => "portal",
            WebDoor::Desk => "desk",
        }
    }

    /// The socket's file name in the state directory when none is set.
    fn default_socket(self) -> &'static str {
        match self {
            WebDoor::Portal => "portal.sock",
            WebDoor::Desk => "desk.sock",
        }
    }
}

impl WebSettings {
    /// Whether the door is served.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    /// The daemon's socket for `door`, for a state directory `state_dir`.
    pub fn socket_path(&self, door: WebDoor, state_dir: &std::path::Path) -> PathBuf {
        if self.socket.as_os_str().is_empty() {
            state_dir.join(door.default_socket())
        } else {
            self.socket.clone()
        }
    }
}

/// `[log]`: how log lines look and how many there are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `human` for a terminal, `json` for journald and log shippers.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `kurir=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line.
    Json,
}
/// Errors that stop start-up: a bad file or value, named so a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment value could not be read or did not fit a setting.
    #[error("configuration {origin}: {message}")]
    Invalid {
        /// Where the bad value came from: the file path or "environment".
        origin: String,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value parsed but is outside what kurir can work with.
    #[error("configuration {origin}: `{key}` {problem}")]
    OutOfRange {
        /// Where the value came from.
        origin: String,
        /// The setting, as `section.key`.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Reads settings of type `T`: its built-in defaults, then `file` (TOML) when given, then
/// every `KURIR_<SECTION>__<KEY>` variable. The daemon reads all of `kurir.toml` this way; a
/// web program reads only its sections of the same kind of file.
pub fn read<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let origin = origin_of(file);
    let invalid = |e: config::ConfigError| ConfigError::Invalid {
        origin: origin.clone(),
        message: without_contents(&e),
    };
    let defaults = config::Config::try_from(&T::default()).map_err(invalid)?;
    let mut builder = config::Config::builder().add_source(defaults);
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::Invalid {
                origin,
                message: "no such file".into(),
            });
        }
        builder = builder.add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    // Only `KURIR_<SECTION>__<KEY>` names are settings; `KURIR_CONFIG` (the file's path)
    // and other `KURIR_*` variables are not, and must not be read as unknown keys.
    let settings_vars: config::Map<String, String> = std::env::vars()
        .filter(|(name, _)| name.starts_with("KURIR_") && name[6..].contains("__"))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("KURIR")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(settings_vars)),
    );
    builder
        .build()
        .map_err(invalid)?
        .try_deserialize()
        .map_err(invalid)
}

/// Every section of the daemon's settings file (`kurir.toml`): what a web program, which reads
/// only its own, leaves alone in a file — and refuses anything else, so a misspelt section
/// (`[portl]`) is not silently ignored. `kurir`'s tests keep this list and its settings equal.
pub const SECTIONS: &[&str] = &[
    "spool",
    "store",
    "sender",
    "print",
    "smtp",
    "smime",
    "registry",
    "connection",
    "dns",
    "queue",
    "deadlines",
    "working_hours",
    "alerts",
    "ops",
    "retention",
    "proof",
    "portal",
    "desk",
    "log",
];

/// Refuses a settings file with a top-level name that is no section of [`SECTIONS`].
pub fn check_sections(file: &Path) -> Result<(), ConfigError> {
    let origin = format!("file {}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Invalid {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|_| ConfigError::Invalid {
        origin: origin.clone(),
        message: "not TOML (the line is not shown)".into(),
    })?;
    match table.keys().find(|key| !SECTIONS.contains(&key.as_str())) {
        Some(unknown) => Err(ConfigError::Invalid {
            origin,
            message: format!(
                "unknown section or key `{unknown}` (sections: {})",
                SECTIONS.join(", ")
            ),
        }),
        None => Ok(()),
    }
}

/// The origin named in settings errors: the file, or the defaults and the environment.
pub fn origin_of(file: Option<&Path>) -> String {
    match file {
        Some(path) => format!("file {}", path.display()),
        None => "(built-in defaults and environment)".to_string(),
    }
}

impl WebSettings {
    /// Refuses a served door without an address to listen on or its certificates.
    pub fn check(&self, door: WebDoor, origin: &str) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        let bad = |key: &'static str, problem: &str| ConfigError::OutOfRange {
            origin: origin.to_string(),
            key,
            problem: problem.to_string(),
        };
        let [listen, cert, key, client_ca] = match door {
            WebDoor::Portal => [
                "portal.listen",
                "portal.cert",
                "portal.key",
                "portal.client_ca",
            ],
            WebDoor::Desk => ["desk.listen", "desk.cert", "desk.key", "desk.client_ca"],
        };
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                listen,
                "must be an address and port, e.g. 0.0.0.0:8443",
            ));
        }
        for (key, path) in [
            (cert, &self.cert),
            (key, &self.key),
            (client_ca, &self.client_ca),
        ] {
            if path.as_os_str().is_empty() {
                return Err(bad(key, "must be set when the door's listen is set"));
            }
        }
        Ok(())
    }

    /// Takes every relative path as relative to `folder` (the settings file's).
    pub fn resolve_from(&mut self, folder: &Path) {
        for p in [
            &mut self.cert,
            &mut self.key,
            &mut self.client_ca,
            &mut self.socket,
        ]
        .into_iter()
        .chain(self.crl.iter_mut())
        {
            resolve_path(p, folder);
        }
    }
}

/// Takes `path`, when set and relative, as relative to `folder` (the settings file's): how
/// every path setting is read.
pub fn resolve_path(path: &mut PathBuf, folder: &Path) {
    if !path.as_os_str().is_empty() && path.is_relative() {
        *path = folder.join(&*path);
    }
}

/// A settings error in words that never quote what the file holds: a parse error by its line
/// and column (not the line itself), a value of the wrong type by its key and the type it
/// should have (not the value). Whoever may name a settings file (`--config`) must not be
/// able to read another file through kurir's error messages.
fn without_contents(e: &config::ConfigError) -> String {
    match e {
        config::ConfigError::FileParse { cause, .. } => {
            let text = cause.to_string();
            let snippet = |line: &&str| {
                let t = line.trim_start();
                t.starts_with('|')
                    || t.split_once(" |")
                        .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
            };
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !snippet(l))
                .filter(|l| !l.trim().is_empty())
                .take(1)
                .collect();
            format!("{} (the line is not shown)", kept.join(" "))
        }
        config::ConfigError::Type { key, expected, .. } => match key {
            Some(key) => format!("{key}: expected {expected}"),
            None => format!("a value: expected {expected}"),
        },
        config::ConfigError::At { error, key, .. } => match (error.as_ref(), key) {
            (config::ConfigError::Type { expected, .. }, Some(key)) => {
                format!("{key}: expected {expected}")
            }
            (inner, _) => without_contents(inner),
        },
        other => redact_quoted(&other.to_string()),
    }
}

/// serde's words for a value it could not take quote the value ("invalid value: string
/// \"…\"", "unknown field `…`"): the quoted parts before ", expected" come from the file and
/// are left out; what follows is kurir's own schema.
fn redact_quoted(message: &str) -> String {
    const QUOTING: [&str; 5] = [
        "invalid type",
        "invalid value",
        "unknown field",
        "unknown variant",
        "invalid length",
    ];
    let Some(start) = QUOTING.iter().filter_map(|q| message.find(q)).min() else {
        return message.to_string();
    };
    let (before, rest) = message.split_at(start);
    let (head, tail) = match rest.find(", expected") {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut redacted = String::new();
    let mut quote: Option<char> = None;
    for c in head.chars() {
        match quote {
            Some(q) if c == q => {
                redacted.push('…');
                redacted.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                redacted.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    format!("{before}{redacted}{tail}")
}
