//! Settings: built-in defaults, then an optional TOML file, then `KURIR_<SECTION>__<KEY>`.
//!
//! Every setting has a default so that `kurir run` works on a fresh machine with no file at all.
//! `config/kurir.toml` documents each one; a test keeps that file and these defaults equal.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod sections;
pub use kurir_protocol::config::ConfigError;
pub use sections::*;

/// All of kurir's settings, one struct per `[section]` of `kurir.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where jobs arrive and where letters, receipts and quarantined jobs are left.
    pub spool: SpoolSettings,
    /// Where the job store lives.
    pub store: StoreSettings,
    /// The sender printed on letters (return address) and named in messages.
    pub sender: SenderSettings,
    /// The postal print queue.
    pub print: PrintSettings,
    /// The SMTP relay for protected e-mail (none by default: everything goes by post).
    pub smtp: SmtpSettings,
    /// S/MIME signing with the agency's certificate.
    pub smime: SmimeSettings,
    /// The municipality registry.
    pub registry: RegistrySettings,
    /// kurir's own check of each municipality's mail servers.
    pub connection: ConnectionSettings,
    /// The resolver the connection check asks.
    pub dns: DnsSettings,
    /// Retries, concurrency and shutdown of the queue manager.
    pub queue: QueueSettings,
    /// When e-mail gives way to post, and when kurir gives up.
    pub deadlines: DeadlineSettings,
    /// The office hours deadlines and alerts are counted in.
    pub working_hours: WorkingHoursSettings,
    /// Where alerts go besides `spool/alerts/` and the log.
    pub alerts: AlertSettings,
    /// Metrics and health.
    pub ops: OpsSettings,
    /// How long delivered documents stay in the spool.
    pub retention: RetentionSettings,
    /// Proof of delivery: delivery reports and read notifications back from municipalities.
    pub proof: ProofSettings,
    /// The web page where municipality IT manage their own registration.
    pub portal: WebSettings,
    /// The web page where the agency's staff send decisions and follow them.
    pub desk: WebSettings,
    /// Log output.
    pub log: LogSettings,
    /// The settings file these were read from (none: the built-in defaults and the
    /// environment). Not a setting: named in errors and by `doctor`.
    #[serde(skip)]
    pub file: Option<std::path::PathBuf>,
}

/// The installed settings file: what every command reads when no other is named, as
/// Postfix's tools read `/etc/postfix/main.cf`.
pub const SYSTEM_FILE: &str = "/etc/kurir/kurir.toml";

pub use kurir_protocol::config::NO_FILE;

/// The settings file a command reads: the one named (`--config`, else `KURIR_CONFIG`), else
/// the installed [`SYSTEM_FILE`] when it exists, else none (the built-in defaults: the quick
/// start works with no file). [`NO_FILE`] names none.
pub fn locate(named: Option<&Path>) -> Option<std::path::PathBuf> {
    match named {
        Some(path) if path.as_os_str() == NO_FILE => None,
        Some(path) => Some(path.to_path_buf()),
        None => {
            let system = Path::new(SYSTEM_FILE);
            system.is_file().then(|| system.to_path_buf())
        }
    }
}

/// Credentials systemd hands the daemon (`LoadCredential=`): files in
/// `$CREDENTIALS_DIRECTORY`, named as here, or with the `kurir_` prefix systemd gives the
/// files of a credential directory.
pub mod credentials {
    /// The agency's S/MIME signing key (PEM).
    pub const SIGNING_KEY: &str = "smime-sign-key";
    /// The relay's SMTP AUTH password.
    pub const SMTP_PASSWORD: &str = "smtp-password";

    /// Where the package keeps the credentials systemd hands the service
    /// (`LoadCredential=kurir:/etc/kurir/credentials`).
    pub const INSTALLED_DIR: &str = "/etc/kurir/credentials";

    /// The installed file of credential `name` (plain, or encrypted with `systemd-creds` as
    /// `<name>.cred`), as `kurir doctor` run outside the service finds it.
    pub fn installed(name: &str) -> Option<std::path::PathBuf> {
        let dir = std::path::Path::new(INSTALLED_DIR);
        [name.to_string(), format!("{name}.cred")]
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    }

    /// The path of credential `name`, if systemd handed it over.
    pub fn path(name: &str) -> Option<std::path::PathBuf> {
        let dir = std::path::PathBuf::from(std::env::var_os("CREDENTIALS_DIRECTORY")?);
        [name.to_string(), format!("kurir_{name}")]
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    }
}

impl Settings {
    /// Loads defaults ← `file` (if given) ← environment `KURIR_<SECTION>__<KEY>`. Relative
    /// paths in the result are taken from the settings file's folder (from the working
    /// directory without a file); credentials systemd handed over replace the signing key's
    /// path and the SMTP password.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let origin = kurir_protocol::config::origin_of(file);
        let mut settings: Settings = kurir_protocol::config::read(file)?;
        if let Some(folder) = file.and_then(Path::parent) {
            let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
            settings.resolve_from(&folder);
        }
        settings.take_credentials(&origin)?;
        settings.check(&origin)?;
        settings.file = file.map(Path::to_path_buf);
        Ok(settings)
    }

    /// Takes every relative path as relative to `folder`.
    fn resolve_from(&mut self, folder: &Path) {
        for p in [
            &mut self.spool.dir,
            &mut self.store.dir,
            &mut self.smtp.ca_file,
            &mut self.smtp.client_cert,
            &mut self.smtp.client_key,
            &mut self.smime.sign_cert,
            &mut self.smime.sign_key,
            &mut self.registry.smime_ca,
        ] {
            kurir_protocol::config::resolve_path(p, folder);
        }
        self.portal.resolve_from(folder);
        self.desk.resolve_from(folder);
    }

    /// Uses the credentials systemd handed over (`LoadCredential=`) for the signing key and
    /// the SMTP password: secrets that are then in no settings file and no environment.
    fn take_credentials(&mut self, origin: &str) -> Result<(), ConfigError> {
        if let Some(key) = credentials::path(credentials::SIGNING_KEY) {
            self.smime.sign_key = key;
        }
        if let Some(path) = credentials::path(credentials::SMTP_PASSWORD) {
            let password = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                origin: origin.to_string(),
                message: format!("credential {}: {e}", path.display()),
            })?;
            self.smtp.password = password.trim_end_matches(['\r', '\n']).to_string();
        }
        Ok(())
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: &str| ConfigError::OutOfRange {
            origin: origin.to_string(),
            key,
            problem: problem.to_string(),
        };
        if self.spool.max_pdf_bytes == 0 {
            return Err(bad("spool.max_pdf_bytes", "must be greater than 0"));
        }
        if self.spool.max_documents == 0 {
            return Err(bad("spool.max_documents", "must be at least 1"));
        }
        if self.print.batch_max_letters == 0 {
            return Err(bad("print.batch_max_letters", "must be at least 1"));
        }
        let w = &self.print.window;
        if !(w.left_mm >= 0.0 && w.top_mm >= 0.0 && w.width_mm > 20.0 && w.height_mm > 15.0)
            || w.left_mm + w.width_mm > 210.0
            || w.top_mm + w.height_mm > 297.0
        {
            return Err(bad(
                "print.window",
                "must lie on an A4 page (210×297 mm) and be at least 20×15 mm",
            ));
        }
        if self.smtp.mode == SmtpMode::Direct && !self.connection.required {
            return Err(bad(
                "smtp.mode",
                "direct needs connection.required = true: kurir delivers only to mail servers its \
                 own check verified",
            ));
        }
        if self.smtp.enabled() {
            if self.smtp.from.parse::<lettre::Address>().is_err() {
                return Err(bad(
                    "smtp.from",
                    "must be the agency's e-mail address when smtp.host is set",
                ));
            }
            if self.smtp.client_cert.as_os_str().is_empty()
                != self.smtp.client_key.as_os_str().is_empty()
            {
                return Err(bad(
                    "smtp.client_cert",
                    "and smtp.client_key must be given together",
                ));
            }
        }
        if !self.portal.user.is_empty() && self.portal.user == self.desk.user {
            return Err(bad(
                "desk.user",
                "must differ from portal.user: the desk's socket must refuse the portal's user, \
                 or a compromised portal could send decisions",
            ));
        }
        self.portal.check(WebDoor::Portal, origin)?;
        self.desk.check(WebDoor::Desk, origin)?;
        if self.proof.enabled() {
            let ok = self
                .proof
                .return_path
                .parse::<lettre::Address>()
                .is_ok_and(|a| !a.user().contains('+'));
            if !ok {
                return Err(bad(
                    "proof.return_path",
                    "must be an e-mail address without '+' (kurir adds +<token> per recipient)",
                ));
            }
            if self.proof.max_inbound_bytes == 0 {
                return Err(bad("proof.max_inbound_bytes", "must be greater than 0"));
            }
        }
        let q = &self.queue;
        if q.retry_intervals.is_empty() || q.retry_intervals.iter().any(Duration::is_zero) {
            return Err(bad(
                "queue.retry_intervals",
                "must list at least one wait, none of them 0",
            ));
        }
        if !(0.0..=0.5).contains(&q.jitter) {
            return Err(bad("queue.jitter", "must be between 0 and 0.5"));
        }
        if q.per_relay_connections == 0 || q.max_concurrent_jobs == 0 {
            return Err(bad(
                "queue.per_relay_connections",
                "and queue.max_concurrent_jobs must be at least 1",
            ));
        }
        let w = &self.working_hours;
        if let Err(e) = crate::worktime::WorkingHours::new(&w.time_zone, &w.start, &w.end) {
            return Err(bad("working_hours", &e.to_string()));
        }
        if !self.alerts.email.is_empty() && self.alerts.email.parse::<lettre::Address>().is_err() {
            return Err(bad("alerts.email", "must be an e-mail address or empty"));
        }
        if !self.alerts.dispatch_email.is_empty()
            && self
                .alerts
                .dispatch_email
                .parse::<lettre::Address>()
                .is_err()
        {
            return Err(bad(
                "alerts.dispatch_email",
                "must be an e-mail address or empty",
            ));
        }
        if !self.ops.listen.is_empty() && self.ops.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "ops.listen",
                "must be an address like 127.0.0.1:9187, or empty",
            ));
        }
        if self.spool.rescan_interval.is_zero() {
            return Err(bad("spool.rescan_interval", "must be greater than 0"));
        }
        Ok(())
    }
}

/// A list of durations, written as `["1m", "2m"]` in TOML or `"1m,2m"` in the environment.
pub(crate) mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            list.iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        List(Vec<String>),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let items = match Form::deserialize(d)? {
            Form::List(list) => list,
            Form::Text(text) => text.split(',').map(|s| s.trim().to_string()).collect(),
        };
        items
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                humantime::parse_duration(s)
                    .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_a_web_program_leaves_alone_are_the_daemons() {
        let value = serde_json::to_value(Settings::default()).expect("settings");
        let mut ours: Vec<&str> = value
            .as_object()
            .expect("a table")
            .keys()
            .map(String::as_str)
            .collect();
        let mut theirs = kurir_protocol::config::SECTIONS.to_vec();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn documented_file_equals_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kurir.toml");
        let text = std::fs::read_to_string(&path).expect("config/kurir.toml exists");
        let parsed: Settings = toml::from_str(&text).expect("config/kurir.toml parses");
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn a_settings_error_never_quotes_what_the_file_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("not-settings");
        for (text, says) in [
            ("secret = \"hunter2\nrest", "the line is not shown"),
            ("[smtp]\nport = \"hunter2\"\n", "smtp.port: expected"),
            ("[spool]\nsettle = \"hunter2\"\n", "expected a duration"),
            ("hunter2 = 1\n", "unknown field"),
            ("[smtp]\nhunter2 = 1\n", "expected one of `mode`, `host`"),
        ] {
            std::fs::write(&path, text).expect("write");
            let msg = Settings::load(Some(&path))
                .expect_err("refused")
                .to_string();
            assert!(!msg.contains("hunter2"), "{text:?} quoted: {msg}");
            assert!(msg.contains(says), "{text:?}: {msg}");
        }
        // A key file is no settings file: nothing of it comes back.
        std::fs::write(&path, [0x8f, 0x41, 0x42, 0x43, 0x0a, 0xff]).expect("write");
        let msg = Settings::load(Some(&path))
            .expect_err("refused")
            .to_string();
        assert!(!msg.contains("ABC"), "{msg}");
    }

    #[test]
    fn the_portal_and_the_desk_may_not_share_a_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("doors.toml");
        std::fs::write(
            &path,
            "[portal]\nuser = \"kurir-web\"\n[desk]\nuser = \"kurir-web\"\n",
        )
        .expect("write");
        let msg = Settings::load(Some(&path))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("desk.user"), "{msg}");
        std::fs::write(
            &path,
            "[portal]\nuser = \"kurir-portal\"\n[desk]\nuser = \"kurir-desk\"\n",
        )
        .expect("write");
        Settings::load(Some(&path)).expect("two users of their own");
    }

    #[test]
    fn unknown_key_in_file_is_named_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[spool]\nmax_pdf_byte = 3\n").expect("write");
        let err = Settings::load(Some(&path)).expect_err("unknown key refused");
        let msg = err.to_string();
        assert!(msg.contains("max_pdf_byte"), "{msg}");
        assert!(msg.contains("bad.toml"), "{msg}");
    }

    #[test]
    fn wrong_type_is_named_with_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[print]\nbatch_max_letters = \"many\"\n").expect("write");
        let msg = Settings::load(Some(&path))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("batch_max_letters"), "{msg}");
    }

    #[test]
    fn retry_intervals_parse_from_a_list_or_comma_text() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(with = "duration_list")]
            v: Vec<Duration>,
        }
        let a: T = toml::from_str("v = [\"1m\", \"30s\"]").expect("list");
        let b: T = toml::from_str("v = \"1m, 30s\"").expect("text");
        assert_eq!(a.v, vec![Duration::from_secs(60), Duration::from_secs(30)]);
        assert_eq!(a.v, b.v);
    }

    #[test]
    fn out_of_range_value_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "[print.window]\nleft_mm = 190\n").expect("write");
        let msg = Settings::load(Some(&path))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("print.window"), "{msg}");
    }
}
