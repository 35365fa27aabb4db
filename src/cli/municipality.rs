//! `kurir municipality …`: what municipality IT registers, through the operator.

use crate::cli::out::{say, say_raw, when};
use crate::registry::connection::{ConnectionCheck, Dane, MtaSts, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::Value;

use crate::cli::Daemon;
use crate::intake::route::Route;
use crate::job::Kommunkod;
use crate::registry::{Changes, FieldChange};
use crate::service::{call, MunicipalityView};

/// What the agency registers about a municipality, on behalf of its IT.
#[derive(Subcommand, Debug)]
pub enum MunicipalityCommand {
    /// List municipalities with their registration and route.
    List {
        /// Only those with a secure connection.
        #[arg(long)]
        secure: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one municipality: registration, proven and pending address, route.
    Show {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a registration. A new or changed address starts pending: documents keep going
    /// to the proven address (or by post) until `verify` and `confirm` prove the new one.
    /// An empty value removes a field.
    Set {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// The municipality's official e-mail address.
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// A specific address for decisions (used instead of the official one).
        #[arg(long, value_name = "ADDRESS")]
        decision_email: Option<String>,
        /// Telephone number.
        #[arg(long, value_name = "NUMBER")]
        phone: Option<String>,
        /// A contact person "Name, phone, e-mail" (repeat for several; replaces the list).
        #[arg(long, value_name = "CONTACT")]
        contact: Vec<String>,
        /// Postal address lines separated by newlines or `\n`, last `nnn nn Postort`.
        #[arg(long, value_name = "LINES")]
        postal_address: Option<String>,
        /// S/MIME certificate (PEM file) to encrypt to; must be valid and for e-mail.
        #[arg(long, value_name = "FILE")]
        smime_cert: Option<PathBuf>,
        /// Remove the registered S/MIME certificate.
        #[arg(long, conflicts_with = "smime_cert")]
        no_smime_cert: bool,
        /// SHA-256 (hex) of the receiving server's certificate or public key.
        #[arg(long, value_name = "SHA256")]
        tls_pin: Option<String>,
        /// Whether the agency has a secure connection with the municipality.
        #[arg(long, value_name = "yes|no")]
        secure: Option<String>,
        /// Who makes the change (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Check the municipality's mail servers now ("säker anslutning"): MX, STARTTLS, TLS
    /// version, certificate, DANE and MTA-STS. Exits 1 when the check fails.
    Check {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// Print the check as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a one-time code to the pending address over the protected route.
    Verify {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// Who asks (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Make the pending address active with the code it received.
    Confirm {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// The code from the line `Verifieringskod: …` of the verification message.
        verification_code: String,
        /// Who confirms (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Let a person manage the municipality's registration in the portal, by the HSA-id on
    /// their SITHS certificate.
    Grant {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// The person's HSA-id (SE + organisation number + '-' + id).
        #[arg(long, value_name = "HSA_ID")]
        hsa_id: String,
        /// The person's name, shown in the history.
        #[arg(long)]
        name: Option<String>,
        /// The CA that issues the person's card, as its subject (e.g. "CN=SITHS e-id Person
        /// HSA-id 3 CA v1, O=Inera AB, C=SE"); default: the one CA the portal trusts.
        #[arg(long, value_name = "SUBJECT")]
        issuer: Option<String>,
        /// Who grants it (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Withdraw a person's portal access to the municipality.
    Revoke {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// The person's HSA-id.
        #[arg(long, value_name = "HSA_ID")]
        hsa_id: String,
        /// Who withdraws it (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Put to use what a person changed on the portal that waits for the agency's approval
    /// (a proven address outside the municipality's mail domains, a postal address).
    Approve {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// The digest `kurir municipality show CODE` prints beside what waits: only what you
        /// reviewed is approved; if anything joined it since, nothing is.
        #[arg(long)]
        digest: String,
        /// Who approves (default: the OS user; not the one who asked for it).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Refuse what waits for approval: none of it is used.
    Refuse {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// Why (recorded in the history).
        #[arg(long)]
        reason: String,
        /// Who refuses (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// The municipality's mail domains: a decision address outside them waits for approval.
    Domains {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// `add` or `remove`; without it, the domains are listed.
        #[arg(value_enum)]
        action: Option<DomainAction>,
        /// The domain, e.g. umea.se.
        domain: Option<String>,
        /// Who changes them (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Every change to a registration: who, when, what, before and after.
    History {
        /// Kommunkod.
        #[arg(value_parser = crate::cli::known_kommunkod)]
        code: Kommunkod,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register many municipalities from CSV (columns: kommunkod, email, decision_email,
    /// secure, phone, contacts, postal_address, tls_pin).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
        /// Who makes the change (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Write every registration as CSV (the import format) to standard output.
    Export,
}

/// What to do with a municipality's mail domains.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DomainAction {
    /// Add a domain.
    Add,
    /// Remove a domain.
    Remove,
}

/// The route in the command line's words (also the `route` field of `show --json`).
pub fn route_words(route: &Route) -> String {
    match route {
        Route::Email { address } => format!("e-mail to {address}"),
        Route::Post { reason } => format!("post ({})", reason.describe()),
    }
}

/// `show --json`: the view, with the route in words.
fn view_json(view: &MunicipalityView) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(view)?;
    value["route"] = Value::String(route_words(&view.route));
    Ok(value)
}

/// Runs a municipality command through the daemon (or the store when none runs).
pub fn run(command: MunicipalityCommand, daemon: &Daemon<'_>) -> anyhow::Result<ExitCode> {
    match command {
        MunicipalityCommand::List { secure, json } => {
            let reply = daemon.ask(
                None,
                call::MunicipalityList {
                    secure_only: secure,
                },
            )?;
            let rows = reply;
            if json {
                say!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            say!(
                "{:<5} {:<24} {:<6} {:<7} {:<36} {:<8} {:<6} {:<5} APPROVAL",
                "CODE",
                "NAME",
                "SECURE",
                "CHECK",
                "ACTIVE ADDRESS",
                "PENDING",
                "POSTAL",
                "CERT"
            );
            for row in rows {
                let (m, r) = (&row.municipality, &row.registered);
                say!(
                    "{:<5} {:<24} {:<6} {:<7} {:<36} {:<8} {:<6} {:<5} {}",
                    m.code.as_str(),
                    m.name,
                    if r.secure_connection { "yes" } else { "no" },
                    match row.checked {
                        Some((verdict, _)) => verdict_words(verdict),
                        None => "-",
                    },
                    r.active_address.as_deref().unwrap_or("-"),
                    if r.pending.is_some() { "yes" } else { "-" },
                    if r.postal_address.is_some() {
                        "yes"
                    } else {
                        "-"
                    },
                    if r.smime_cert.is_some() { "yes" } else { "-" },
                    if r.awaiting_approval.is_some() {
                        "WAITING"
                    } else {
                        "-"
                    },
                );
            }
        }
        MunicipalityCommand::Show { code, json } => {
            let reply = daemon.ask(None, call::MunicipalityShow { code })?;
            let view = reply;
            if json {
                say!("{}", serde_json::to_string_pretty(&view_json(&view)?)?);
                return Ok(ExitCode::SUCCESS);
            }
            print_view(code, &view);
        }
        MunicipalityCommand::Grant {
            code,
            hsa_id,
            name,
            issuer,
            operator,
        } => {
            daemon.ask(
                operator,
                call::MunicipalityGrant {
                    code,
                    hsa_id: hsa_id.clone(),
                    name,
                    issuer,
                },
            )?;
            say!("{hsa_id} may now manage kommun {code} in the portal");
        }
        MunicipalityCommand::Revoke {
            code,
            hsa_id,
            operator,
        } => {
            daemon.ask(
                operator,
                call::MunicipalityRevoke {
                    code,
                    hsa_id: hsa_id.clone(),
                },
            )?;
            say!("{hsa_id} may no longer manage kommun {code}");
        }
        MunicipalityCommand::Set {
            code,
            email,
            decision_email,
            phone,
            contact,
            postal_address,
            smime_cert,
            no_smime_cert,
            tls_pin,
            secure,
            operator,
        } => {
            let smime_cert_pem = match (smime_cert, no_smime_cert) {
                (Some(path), _) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                ),
                (None, true) => Some(String::new()),
                (None, false) => None,
            };
            let changes = Changes {
                email,
                decision_email,
                phone,
                contacts: (!contact.is_empty()).then_some(contact),
                postal_address,
                smime_cert_pem,
                tls_pin,
                secure,
            };
            if changes == Changes::default() {
                bail!("nothing to change: give at least one option (see --help)");
            }
            let reply = daemon.ask(operator, call::MunicipalitySet { code, changes })?;
            let changed = reply;
            print_changes(code, &changed.changes);
            if let Some(p) = &changed.registered.pending {
                say!(
                    "{code}: {} is pending; documents go to the proven address (or by post) until \
                     `kurir municipality verify {code}` and `confirm` prove it",
                    p.address
                );
            }
        }
        MunicipalityCommand::Check { code, json } => {
            let reply = daemon.ask(None, call::MunicipalityCheck { code })?;
            let report = reply;
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_check(&report.check);
                say!("route now        {}", route_words(&report.route));
            }
            if report.check.verdict != Verdict::Passed {
                return Ok(ExitCode::from(1));
            }
        }
        MunicipalityCommand::Verify { code, operator } => {
            let reply = daemon.ask(operator, call::MunicipalityVerify { code })?;
            let sent = reply;
            say!(
                "{code}: verification code sent to {} (valid until {}); server replied: {}",
                sent.address,
                when(sent.expires),
                sent.reply
            );
        }
        MunicipalityCommand::Confirm {
            code,
            verification_code,
            operator,
        } => {
            let reply = daemon.ask(
                operator,
                call::MunicipalityConfirm {
                    code,
                    secret: verification_code,
                },
            )?;
            let confirmed = reply;
            match (&confirmed.awaiting_approval, &confirmed.active_address) {
                (Some(waiting), Some(used)) => say!(
                    "{code}: {waiting} is proven and waits for another operator's approval \
                     (`kurir municipality show {code}` prints the digest to approve it by); \
                     decisions keep going to {used}"
                ),
                (Some(waiting), None) => say!(
                    "{code}: {waiting} is proven and waits for another operator's approval \
                     (`kurir municipality show {code}` prints the digest to approve it by); \
                     until then decisions go by post"
                ),
                (None, used) => say!(
                    "{code}: {} is now the active address",
                    used.as_deref().unwrap_or("-")
                ),
            }
        }
        MunicipalityCommand::Approve {
            code,
            digest,
            operator,
        } => {
            let reply = daemon.ask(operator, call::MunicipalityApprove { code, digest })?;
            let changed = reply;
            print_changes(code, &changed.changes);
            say!("{code}: approved; it is used from now on");
        }
        MunicipalityCommand::Refuse {
            code,
            reason,
            operator,
        } => {
            let reply = daemon.ask(operator, call::MunicipalityRefuse { code, reason })?;
            let changed = reply;
            print_changes(code, &changed.changes);
            say!("{code}: refused; none of it is used");
        }
        MunicipalityCommand::Domains {
            code,
            action,
            domain,
            operator,
        } => {
            let (add, remove) = match (action, domain) {
                (Some(DomainAction::Add), Some(d)) => (vec![d], vec![]),
                (Some(DomainAction::Remove), Some(d)) => (vec![], vec![d]),
                (Some(_), None) => bail!("give the domain, e.g. `add umea.se`"),
                (None, _) => (vec![], vec![]),
            };
            let reply = daemon.ask(operator, call::MunicipalityDomains { code, add, remove })?;
            let changed = reply;
            if changed.registered.domains.is_empty() {
                say!("{code}: no mail domains: every decision address waits for approval");
            }
            for d in &changed.registered.domains {
                say!("{d}");
            }
        }
        MunicipalityCommand::History { code, json } => {
            let reply = daemon.ask(None, call::MunicipalityHistory { code })?;
            let changes = reply;
            if json {
                say!("{}", serde_json::to_string_pretty(&changes)?);
                return Ok(ExitCode::SUCCESS);
            }
            for c in changes {
                say!("{}  {}  {}", when(c.at), c.operator, c.what);
                for f in crate::registry::diff(&c.before, &c.after) {
                    say!(
                        "    {}: {} -> {}",
                        f.field,
                        short(&f.before),
                        short(&f.after)
                    );
                }
                if let Some(notice) = &c.notice {
                    say!("    notice of the change to: {}", notice.to.join(", "));
                }
            }
        }
        MunicipalityCommand::Import {
            file,
            dry_run,
            operator,
        } => {
            let csv = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let reply = daemon.ask(operator, call::MunicipalityImport { csv, dry_run })?;
            let summary = reply;
            for m in &summary.municipalities {
                print_changes(m.kommunkod, &m.changes);
            }
            if dry_run {
                say!(
                    "dry run: {} municipalities would change; nothing was written",
                    summary.municipalities.len()
                );
            } else {
                say!("{} municipalities changed", summary.municipalities.len());
            }
        }
        MunicipalityCommand::Export => {
            let reply = daemon.ask(None, call::MunicipalityExport {})?;
            say_raw!("{}", reply);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verdict_words(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "passed",
        Verdict::Failed => "FAILED",
    }
}

/// A connection check, one line per fact.
fn print_check(check: &ConnectionCheck) {
    say!(
        "connection       {} for {}, checked {}",
        verdict_words(check.verdict),
        check.domain,
        when(check.checked_at)
    );
    say!(
        "MX lookup        {}",
        if check.mx_validated {
            "DNSSEC-validated"
        } else {
            "not DNSSEC-validated"
        }
    );
    for mx in &check.mx {
        let dane = match mx.dane {
            Dane::NotValidated => "DANE not applicable (no validated DNSSEC)",
            Dane::NoTlsa => "no TLSA records",
            Dane::Unusable => "TLSA records unusable for SMTP",
            Dane::Matched => "DANE matched",
            Dane::NotMatched => "DANE NOT matched",
        };
        say!(
            "MX {:<13} {} ({}) {}; {dane}",
            mx.preference,
            mx.host,
            mx.address.as_deref().unwrap_or("no address"),
            if mx.passed { "passed" } else { "FAILED" }
        );
        if let Some(tls) = &mx.tls {
            say!(
                "  TLS            {} {}, certificate sha256 {}",
                tls.version,
                tls.cipher,
                tls.cert_sha256
            );
            say!(
                "  certificate    {} issued by {}, valid until {}{}",
                tls.subject,
                tls.issuer,
                when(tls.not_after),
                match &tls.pkix_error {
                    None => ", chain and name verified".to_string(),
                    Some(e) => format!(", not verified: {e}"),
                }
            );
        }
    }
    match &check.mta_sts {
        MtaSts::None => say!("MTA-STS          none published"),
        MtaSts::Unavailable { reason } => {
            say!("MTA-STS          published but unavailable: {reason}")
        }
        MtaSts::Policy {
            mode,
            id,
            mx,
            max_age,
            covers_every_mx,
        } => say!(
            "MTA-STS          mode {mode:?}, id {id}, mx {}, max_age {max_age}s{}",
            mx.join(" "),
            if *covers_every_mx {
                ""
            } else {
                ", does NOT cover every MX"
            }
        ),
    }
    for problem in &check.problems {
        say!("problem          {}", problem.describe());
    }
}

fn print_view(code: Kommunkod, view: &MunicipalityView) {
    let (m, r) = (&view.municipality, &view.registered);
    let or_dash = |v: Option<&str>| v.unwrap_or("-").to_string();
    say!("kommunkod        {}", m.code);
    say!("name             {}", m.name);
    match &view.hold {
        // A hold wins over the route: nothing leaves for this municipality until released.
        Some(_) => say!(
            "route now        none: held (once released: {})",
            route_words(&view.route)
        ),
        None => say!("route now        {}", route_words(&view.route)),
    }
    if let Some(hold) = &view.hold {
        say!(
            "held             by {} since {}: {} (new documents wait until `kurir release --to {code}`)",
            hold.operator, when(hold.at), hold.reason
        );
    }
    say!(
        "secure           {}",
        if r.secure_connection { "yes" } else { "no" }
    );
    say!("official e-mail  {}", or_dash(r.official_email.as_deref()));
    say!("decision e-mail  {}", or_dash(r.decision_email.as_deref()));
    say!("active address   {}", or_dash(r.active_address.as_deref()));
    if let Some(p) = &r.pending {
        let code_state = match p.code_expires {
            Some(exp) => format!("code sent, valid until {}", when(exp)),
            None => format!("run `kurir municipality verify {code}`"),
        };
        say!("pending address  {} ({code_state})", p.address);
    }
    say!("phone            {}", or_dash(r.phone.as_deref()));
    for c in &r.contacts {
        say!("contact          {c}");
    }
    match &r.postal_address {
        Some(a) => say!("postal address   {}", a.lines().join(", ")),
        None => say!("postal address   - (letters go to the registry office)"),
    }
    match &r.smime_cert {
        Some(c) => say!(
            "S/MIME cert      {} (sha256 {}, valid until {})",
            c.subject,
            c.sha256,
            c.not_after
        ),
        None => say!("S/MIME cert      - (messages are signed, not encrypted)"),
    }
    say!("TLS pin          {}", or_dash(r.tls_pin.as_deref()));
    match view.connection.first() {
        Some(check) => {
            print_check(check);
            for earlier in view.connection.iter().skip(1) {
                say!(
                    "earlier check    {} {}",
                    when(earlier.checked_at),
                    verdict_words(earlier.verdict)
                );
            }
        }
        None => say!("connection       not checked yet (`kurir municipality check {code}`)"),
    }
    say!(
        "mail domains     {}",
        if r.domains.is_empty() {
            "- (every decision address waits for approval)".to_string()
        } else {
            r.domains.join(", ")
        }
    );
    if let Some(waiting) = &r.awaiting_approval {
        if let Some(address) = &waiting.address {
            say!("WAITS FOR APPROVAL  address {address} (proven)");
        }
        if let Some(postal) = &waiting.postal_address {
            say!(
                "WAITS FOR APPROVAL  postal address {}",
                postal.lines().join(", ")
            );
        }
        say!(
            "                    asked by {} at {}",
            waiting.by,
            when(waiting.since)
        );
        say!(
            "                    to approve exactly this: kurir municipality approve {code} --digest {}",
            waiting.digest()
        );
    }
    for g in &r.grants {
        say!(
            "portal access    {}{}, card from {}",
            g.hsa_id,
            g.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            g.issuer
                .as_deref()
                .unwrap_or("any CA (granted before CAs were named: grant again with --issuer)")
        );
    }
}

fn short(v: &Value) -> String {
    let text = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn print_changes(code: Kommunkod, changes: &[FieldChange]) {
    if changes.is_empty() {
        say!("{code}: no change");
    }
    for c in changes {
        say!(
            "{code}: {}: {} -> {}",
            c.field,
            short(&c.before),
            short(&c.after)
        );
    }
}
