//! One struct per `[section]` of `kurir.toml`, each with its built-in defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use kurir_protocol::config::{LogFormat, LogSettings, SenderSettings, WebDoor, WebSettings};

/// `[spool]`: the directory tree that is the interface to writers and readers of documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolSettings {
    /// Root of the spool; a relative path is taken from the settings file's folder (the
    /// working directory when no file is read).
    pub dir: PathBuf,
    /// Largest accepted PDF in bytes; larger files are quarantined before they are read.
    pub max_pdf_bytes: u64,
    /// Largest accepted `job.toml` in bytes.
    pub max_manifest_bytes: u64,
    /// Most documents one job may carry.
    pub max_documents: usize,
    /// Most pages one document may have.
    pub max_pages: usize,
    /// Most bytes all compressed streams of one PDF may inflate to (decompression-bomb guard).
    pub max_decompressed_bytes: u64,
    /// How long a job directory in `incoming/` without `job.toml` is left alone, in case a
    /// writer that ignores the tmp-then-rename rule is still writing it.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// Safety-net rescan of `incoming/`, in case a file-system event was lost.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Let the daemon's group read the spool and state (mode 0750 instead of 0700), e.g. for
    /// a case system that reads receipts under another user of the same group.
    pub group_access: bool,
    /// The group a case system writes jobs through (e.g. `kurir-submit`), as Postfix's
    /// postdrop: its members may build jobs in `tmp/` and rename them into `incoming/`, and
    /// nothing else — no operator socket, no store, no keys, no receipts. kurir's own user
    /// must be a member (it reads what they write). Empty: only kurir's user writes jobs.
    pub submit_group: String,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("spool"),
            max_pdf_bytes: 25_000_000,
            max_manifest_bytes: 65_536,
            max_documents: 10,
            max_pages: 500,
            max_decompressed_bytes: 200_000_000,
            settle: Duration::from_secs(10),
            rescan_interval: Duration::from_secs(5),
            group_access: false,
            submit_group: String::new(),
        }
    }
}

/// `[store]`: the sled database, the single source of truth for job state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Directory of the database and the control socket.
    pub dir: PathBuf,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(kurir_protocol::config::DEFAULT_STATE_DIR),
        }
    }
}

/// `[print]`: letters for window envelopes, collected in batches for a print shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrintSettings {
    /// A batch is closed when it holds this many letters (and at the end of each day).
    pub batch_max_letters: u32,
    /// The address field that shows through the envelope window.
    pub window: WindowSettings,
    /// The group the print shop reads `spool/print/` through (e.g. `kurir-print`): batches
    /// become readable by it (folders 0750, files 0640, setgid) and nothing else in the spool
    /// does. Empty: only kurir's own user (and group with `[spool] group_access`).
    pub group: String,
    /// Working time within which the print shop must confirm a closed batch printed and
    /// posted (`kurir print confirm`), or operations are alerted.
    #[serde(with = "humantime_serde")]
    pub confirm_within: Duration,
}

impl Default for PrintSettings {
    fn default() -> Self {
        Self {
            batch_max_letters: 500,
            window: WindowSettings::default(),
            group: String::new(),
            confirm_within: Duration::from_secs(8 * 3600),
        }
    }
}

/// `[print.window]`: position and size of the address field on an A4 page, in millimetres
/// from the page's top-left corner (DIN 5008 by default, also used in Nordic practice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSettings {
    /// Distance from the left edge.
    pub left_mm: f64,
    /// Distance from the top edge.
    pub top_mm: f64,
    /// Width of the field.
    pub width_mm: f64,
    /// Height of the field.
    pub height_mm: f64,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            left_mm: 20.0,
            top_mm: 45.0,
            width_mm: 85.0,
            height_mm: 40.0,
        }
    }
}

/// How kurir opens TLS to the relay. There is no plaintext setting, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connect, then STARTTLS is required before anything else (port 587 or 25).
    Starttls,
    /// TLS from the first byte (port 465).
    Wrapper,
}

/// Where kurir hands protected e-mail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpMode {
    /// To the agency's relay (`host`), which delivers on under kurir's TLS policy.
    #[default]
    Relay,
    /// Straight to each municipality's own mail server (MX), under the same policy, for an
    /// agency without a relay of its own: the receipt then proves the final hop.
    Direct,
}

/// `[smtp]`: the relay (or receiving server) that protected e-mail is handed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// `relay` (to `host`) or `direct` (to each municipality's MX, as kurir's connection check
    /// found and verified it).
    pub mode: SmtpMode,
    /// Relay host name; empty means no relay, and every job goes by post. TLS verifies the
    /// relay's certificate against this name.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// `starttls` or `wrapper`; TLS is always required and verified (TLS 1.2 or newer).
    pub tls: SmtpTls,
    /// PEM file of the CA certificates that verify the relay; empty means the system's roots.
    pub ca_file: PathBuf,
    /// The agency's sender address (From and envelope sender).
    pub from: String,
    /// Display name in From.
    pub from_name: String,
    /// Name sent in EHLO; empty means this machine's host name.
    pub hello_name: String,
    /// Optional TLS client certificate (PEM) and key for the relay.
    pub client_cert: PathBuf,
    /// Key of the client certificate.
    pub client_key: PathBuf,
    /// Optional SMTP AUTH user (only ever sent after TLS is up).
    pub username: String,
    /// Password for `username`; prefer the environment: `KURIR_SMTP__PASSWORD`.
    pub password: String,
    /// Bound on connecting and on each SMTP step.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Idle connections kept open for reuse.
    pub pool_max_idle: usize,
    /// How long an idle connection is kept.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            mode: SmtpMode::Relay,
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            ca_file: PathBuf::new(),
            from: String::new(),
            from_name: "Migrationsverket".into(),
            hello_name: String::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
            username: String::new(),
            password: String::new(),
            timeout: Duration::from_secs(30),
            pool_max_idle: 4,
            pool_idle_timeout: Duration::from_secs(60),
        }
    }
}

impl SmtpSettings {
    /// A relay is configured: protected e-mail is possible.
    pub fn enabled(&self) -> bool {
        self.mode == SmtpMode::Direct || !self.host.trim().is_empty()
    }
}

/// `[smime]`: every message is signed with the agency's certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmimeSettings {
    /// The agency's signing certificate (PEM, may include its chain).
    pub sign_cert: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub sign_key: PathBuf,
}

impl Default for SmimeSettings {
    fn default() -> Self {
        Self {
            sign_cert: PathBuf::from("certs/agency-sign.pem"),
            sign_key: PathBuf::from("certs/agency-sign.key"),
        }
    }
}

/// `[connection]`: kurir's own check of each municipality's mail servers ("säker anslutning"),
/// which e-mail routing needs besides the agency's agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    /// E-mail needs a passing check no older than `max_age`. Off only where another party
    /// vouches for the hop to the municipality (doctor warns).
    pub required: bool,
    /// How old a passing check may be and still let decisions go by e-mail.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// How often the daemon checks every municipality with an e-mail route.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A municipality's server certificate expiring within this alerts operations.
    #[serde(with = "humantime_serde")]
    pub expiry_warning: Duration,
    /// Bound on each step of a check (DNS answer, connect, SMTP reply, handshake, HTTPS).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// PEM file of CA certificates the municipalities' servers (and MTA-STS policy hosts) are
    /// verified against; empty: the system's roots.
    pub ca_file: PathBuf,
    /// The TCP port of the municipalities' mail servers (25; another only in a test lab).
    pub port: u16,
    /// The HTTPS port MTA-STS policies are fetched from (443; another only in a test lab).
    pub https_port: u16,
    /// Where kurir answers the relay's TLS policy lookups (Postfix `socketmap`); empty: off.
    pub policy_socket: PathBuf,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            required: true,
            max_age: Duration::from_secs(7 * 24 * 3600),
            interval: Duration::from_secs(24 * 3600),
            expiry_warning: Duration::from_secs(21 * 24 * 3600),
            timeout: Duration::from_secs(20),
            ca_file: PathBuf::new(),
            port: 25,
            https_port: 443,
            policy_socket: PathBuf::new(),
        }
    }
}

/// `[dns]`: the resolver the connection check asks. DANE is only applied where this resolver
/// validates DNSSEC (its answers carry the AD flag): use a validating resolver on this host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// `address` or `address:port`; empty: the nameservers of /etc/resolv.conf. As an
    /// environment variable, separated by commas: `KURIR_DNS__NAMESERVERS="127.0.0.1:53"`.
    #[serde(deserialize_with = "list_or_words")]
    pub nameservers: Vec<String>,
}

/// A list, or one string of comma-separated items (how an environment variable gives it).
fn list_or_words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrWords {
        List(Vec<String>),
        Words(String),
    }
    Ok(match ListOrWords::deserialize(d)? {
        ListOrWords::List(list) => list,
        ListOrWords::Words(words) => words
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// `[registry]`: how municipality addresses are proven.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// How long a verification code sent to a new address stays valid.
    #[serde(with = "humantime_serde")]
    pub verification_code_ttl: Duration,
    /// The CAs the agency trusts for municipalities' organisation e-mail (PEM): a registered
    /// S/MIME certificate must chain to one. Empty: not checked (doctor warns, and the portal
    /// takes no certificate at all).
    pub smime_ca: PathBuf,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            verification_code_ttl: Duration::from_secs(7 * 24 * 3600),
            smime_ca: PathBuf::new(),
        }
    }
}

/// `[queue]`: when a deferred delivery is tried again and how much runs at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Waits between attempts; the last one repeats.
    #[serde(with = "super::duration_list")]
    pub retry_intervals: Vec<Duration>,
    /// Random spread of each wait, as a fraction (0.1 = ±10 %), so retries do not arrive in
    /// lockstep.
    pub jitter: f64,
    /// Most SMTP sessions open to the relay at once.
    pub per_relay_connections: usize,
    /// Most jobs handled at once (all deliverers together).
    pub max_concurrent_jobs: usize,
    /// On SIGTERM, how long SMTP sessions in flight may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(60 * n);
        Self {
            retry_intervals: vec![m(1), m(2), m(5), m(10), m(15), m(30)],
            jitter: 0.1,
            per_relay_connections: 4,
            max_concurrent_jobs: 16,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Deadlines for one kind of document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindDeadlines {
    /// Working time after intake when e-mail that has not succeeded gives way to post.
    #[serde(with = "humantime_serde")]
    pub fallback_after: Duration,
    /// Calendar time after intake when kurir gives up (`failed`) and alerts.
    #[serde(with = "humantime_serde")]
    pub expire_after: Duration,
}

impl Default for KindDeadlines {
    fn default() -> Self {
        Self {
            fallback_after: Duration::from_secs(4 * 3600),
            expire_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// `[deadlines]`: per document kind, and when a waiting job is worth a person's attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlineSettings {
    /// A job still deferred after this much working time raises an alert.
    #[serde(with = "humantime_serde")]
    pub warn_after: Duration,
    /// For the assignment decision.
    pub anvisningsbeslut: KindDeadlines,
    /// For the notice of the need for a legal guardian.
    #[serde(rename = "god-man")]
    pub god_man: KindDeadlines,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        Self {
            warn_after: Duration::from_secs(15 * 60),
            anvisningsbeslut: KindDeadlines::default(),
            god_man: KindDeadlines::default(),
        }
    }
}

impl DeadlineSettings {
    /// The deadlines of one document kind.
    pub fn for_kind(&self, kind: crate::job::DocumentKind) -> &KindDeadlines {
        match kind {
            crate::job::DocumentKind::Anvisningsbeslut => &self.anvisningsbeslut,
            crate::job::DocumentKind::GodMan => &self.god_man,
        }
    }
}

/// `[working_hours]`: deadlines and alerts count working time; deliveries go at any hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkingHoursSettings {
    /// IANA time zone.
    pub time_zone: String,
    /// Start of the working day, `HH:MM`.
    pub start: String,
    /// End of the working day, `HH:MM`.
    pub end: String,
}

impl Default for WorkingHoursSettings {
    fn default() -> Self {
        Self {
            time_zone: "Europe/Stockholm".into(),
            start: "08:00".into(),
            end: "17:00".into(),
        }
    }
}

/// `[alerts]`: alerts always go to `spool/alerts/` and the log; optionally also by e-mail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Operations' address for alert e-mails (sent through the relay); empty: none.
    pub email: String,
    /// Dispatch's address for the alerts that ask for a phone call to the municipality
    /// (team `dispatch`); empty: those go to `email` too.
    pub dispatch_email: String,
}

impl AlertSettings {
    /// Where an alert is e-mailed, if anywhere: one for dispatch (a phone call to make) or
    /// for operations.
    pub fn address_for(&self, for_dispatch: bool) -> Option<&str> {
        let chosen = if for_dispatch && !self.dispatch_email.is_empty() {
            &self.dispatch_email
        } else {
            &self.email
        };
        (!chosen.is_empty()).then_some(chosen.as_str())
    }

    /// Whether any alert is e-mailed.
    pub fn any(&self) -> bool {
        !self.email.is_empty() || !self.dispatch_email.is_empty()
    }
}

/// `[ops]`: Prometheus metrics and the health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    /// Address for `/metrics` and `/healthz`; keep it on loopback. Empty: not served.
    pub listen: String,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9187".into(),
        }
    }
}

/// `[proof]`: asking for delivery status notifications (DSN, RFC 3461) and read notifications
/// (MDN, RFC 8098), and how long to wait for them before a person is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProofSettings {
    /// The agency's address that takes the reports back, e.g. `kurir-reports@agency.example`
    /// (routed by the agency's MTA to `kurir inbound`). Empty: no reports are asked for, and
    /// proof ends at the relay's `250`.
    pub return_path: String,
    /// Working time within which a delivery report must confirm a message, or an alert.
    #[serde(with = "humantime_serde")]
    pub confirm_within: Duration,
    /// Working time within which a read notification must come, or an alert that says to
    /// phone the municipality.
    #[serde(with = "humantime_serde")]
    pub read_within: Duration,
    /// Largest inbound message `kurir inbound` stores; larger ones are refused (exit 75 would
    /// only make the MTA retry them, so they are refused for good with exit 0 and a log line).
    pub max_inbound_bytes: u64,
}

impl Default for ProofSettings {
    fn default() -> Self {
        Self {
            return_path: String::new(),
            confirm_within: Duration::from_secs(3600),
            read_within: Duration::from_secs(2 * 3600),
            max_inbound_bytes: 1024 * 1024,
        }
    }
}

impl ProofSettings {
    /// Whether reports are asked for at all.
    pub fn enabled(&self) -> bool {
        !self.return_path.is_empty()
    }
}

/// `[retention]`: nothing in the spool grows forever. Files leave; the store keeps the facts
/// (every event, each document's, letter's and report's SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// How long a finished job's documents stay in `spool/active/`.
    #[serde(with = "humantime_serde")]
    pub documents_after: Duration,
    /// How long delivery reports stay in `spool/inbound/done/` and `inbound/unmatched/`.
    #[serde(with = "humantime_serde")]
    pub reports_after: Duration,
    /// How long a receipt stays in `spool/receipts/` (the case system reads it long before).
    #[serde(with = "humantime_serde")]
    pub receipts_after: Duration,
    /// How long an alert file stays in `spool/alerts/`.
    #[serde(with = "humantime_serde")]
    pub alerts_after: Duration,
    /// How long a batch stays in `spool/print/` after the print shop confirmed it (a batch
    /// never confirmed stays).
    #[serde(with = "humantime_serde")]
    pub print_after: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        let days = |n: u64| Duration::from_secs(n * 24 * 3600);
        Self {
            documents_after: days(30),
            reports_after: days(30),
            receipts_after: days(90),
            alerts_after: days(90),
            print_after: days(14),
        }
    }
}
