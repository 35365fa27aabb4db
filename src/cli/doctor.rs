//! `kurir doctor`: checks an installation the way an experienced operator would, one line per
//! check — `ok`, `warn` or `fail` — before a real decision depends on it.

use crate::cli::out::{say, when};
use crate::registry::connection::Verdict;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509StoreContext, X509};

use crate::config::Settings;
use crate::job::Kommunkod;
use crate::registry::{check_certificate_for_email, CertificateProblem, Registered};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but needs attention soon.
    Warn,
    /// Broken: a delivery would fail or data is exposed.
    Fail,
}

impl Level {
    /// The word printed in the first column.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// What was checked.
    pub check: String,
    /// What was found.
    pub detail: String,
}

fn finding(level: Level, check: impl Into<String>, detail: impl Into<String>) -> Finding {
    Finding {
        level,
        check: check.into(),
        detail: detail.into(),
    }
}

/// Certificates that expire sooner than this are warned about.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// Runs every check. `registry` is what is registered (from the daemon or the store).
pub async fn examine(
    settings: &Settings,
    config_origin: &str,
    registry: &[(Kommunkod, Registered)],
    web: &[(crate::config::WebDoor, crate::service::WebStatus)],
) -> Vec<Finding> {
    let mut out = vec![finding(
        Level::Ok,
        "configuration",
        format!("loaded from {config_origin}"),
    )];
    out.extend(check_directory(
        &settings.spool.dir,
        "spool",
        settings.spool.group_access,
        !settings.print.group.is_empty() || !settings.spool.submit_group.is_empty(),
    ));
    out.extend(check_directory(
        &settings.store.dir,
        "state",
        settings.spool.group_access,
        false,
    ));
    out.extend(check_spool(settings));
    if settings.smtp.enabled() {
        // Outside the service the key may be a credential only systemd hands over.
        let credential =
            crate::config::credentials::installed(crate::config::credentials::SIGNING_KEY)
                .filter(|_| std::env::var_os("CREDENTIALS_DIRECTORY").is_none());
        match credential {
            Some(path) => out.extend(
                check_private_key(&path, "S/MIME signing key")
                    .into_iter()
                    .map(|mut f| {
                        f.detail = format!("{} (a systemd credential)", f.detail);
                        f
                    }),
            ),
            None => out.extend(check_private_key(
                &settings.smime.sign_key,
                "S/MIME signing key",
            )),
        }
        out.extend(check_signing_certificate(settings));
        if !settings.smtp.client_key.as_os_str().is_empty() {
            out.extend(check_private_key(
                &settings.smtp.client_key,
                "relay client key",
            ));
        }
        if settings.smtp.mode == crate::config::SmtpMode::Direct {
            out.push(finding(
                Level::Ok,
                "relay",
                "none: direct mode delivers to each municipality's MX as its check verified it",
            ));
        } else {
            out.extend(check_relay(settings, registry).await);
        }
    } else {
        out.push(finding(
            Level::Ok,
            "relay",
            "none configured: every job goes to the postal print queue",
        ));
    }
    out.extend(check_registry(registry, settings.smtp.enabled()));
    out.extend(check_trust(settings, registry, web));
    out
}

/// What the agency trusts and what waits for it: the CAs for municipalities' certificates,
/// certificates stored with their private key, grants bound to no CA, changes waiting for
/// approval, and the portal's and the desk's revocation lists.
fn check_trust(
    settings: &Settings,
    registry: &[(Kommunkod, Registered)],
    web: &[(crate::config::WebDoor, crate::service::WebStatus)],
) -> Vec<Finding> {
    let mut out = Vec::new();
    if settings.registry.smime_ca.as_os_str().is_empty() {
        out.push(finding(
            Level::Warn,
            "S/MIME trust",
            "[registry] smime_ca is not set: municipalities' certificates are not checked \
             against a CA, and the portal takes none",
        ));
    }
    for (code, r) in registry {
        if r.smime_cert
            .as_ref()
            .is_some_and(|c| crate::registry::holds_private_key(&c.pem))
        {
            out.push(finding(
                Level::Fail,
                "S/MIME certificates",
                format!(
                    "kommun {code}: the stored certificate holds a private key (stored by an \
                     earlier release): the key is exposed; tell the municipality to replace it, \
                     then register the new certificate alone"
                ),
            ));
        }
        let unbound: Vec<&str> = r
            .grants
            .iter()
            .filter(|g| g.issuer.is_none())
            .map(|g| g.hsa_id.as_str())
            .collect();
        if !unbound.is_empty() {
            out.push(finding(
                Level::Warn,
                "portal grants",
                format!(
                    "kommun {code}: granted to {} with no CA named: any CA's card with that \
                     HSA-id is let in; grant again with --issuer",
                    unbound.join(", ")
                ),
            ));
        }
        if let Some(waiting) = &r.awaiting_approval {
            out.push(finding(
                Level::Warn,
                "approvals",
                format!(
                    "kommun {code}: a change by {} waits for approval since {} (`kurir \
                     municipality show {code}`, then `approve` or `refuse`)",
                    waiting.by,
                    when(waiting.since)
                ),
            ));
        }
    }
    let now = jiff::Timestamp::now().as_second();
    for (door, status) in web {
        let check = format!("{} revocation lists", door.section());
        for crl in &status.crls {
            match crl.next_update {
                Some(next) if next < now => out.push(finding(
                    Level::Warn,
                    check.clone(),
                    format!(
                        "{} (from {}) is past its nextUpdate: a card revoked since is still let \
                         in; fetch the new list",
                        crl.file, crl.issuer
                    ),
                )),
                _ => out.push(finding(
                    Level::Ok,
                    check.clone(),
                    format!("{} is current", crl.file),
                )),
            }
        }
    }
    out
}

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn check_directory(path: &Path, what: &str, group_access: bool, groups_pass: bool) -> Vec<Finding> {
    let check = format!("{what} permissions");
    match mode(path) {
        None => vec![finding(
            Level::Warn,
            check,
            format!(
                "{} does not exist yet (the daemon creates it)",
                path.display()
            ),
        )],
        // Passing through (o+x) and nothing more: the print shop's way to spool/print/ and
        // the writers' to tmp/ and incoming/.
        Some(m) if m & 0o007 == 0o001 && groups_pass => vec![finding(
            Level::Ok,
            check,
            format!(
                "{} mode {m:04o}: others may pass through to the folders of [print] group and \
                 [spool] submit_group, and list nothing",
                path.display()
            ),
        )],
        Some(m) if m & 0o007 != 0 => vec![finding(
            Level::Fail,
            check,
            format!(
                "{} is mode {m:04o}: readable by everyone; chmod 700",
                path.display()
            ),
        )],
        Some(m) if m & 0o070 != 0 && !group_access => vec![finding(
            Level::Warn,
            check,
            format!(
                "{} is mode {m:04o}: the group can read it, but [spool] group_access is false",
                path.display()
            ),
        )],
        Some(m) => vec![finding(
            Level::Ok,
            check,
            format!("{} mode {m:04o}", path.display()),
        )],
    }
}

fn check_private_key(path: &Path, what: &str) -> Vec<Finding> {
    match mode(path) {
        None => vec![finding(
            Level::Fail,
            what,
            format!("{} is missing", path.display()),
        )],
        Some(m) if m & 0o077 != 0 => vec![finding(
            Level::Fail,
            what,
            format!(
                "{} is mode {m:04o}: readable by others; chmod 600",
                path.display()
            ),
        )],
        Some(m) => vec![finding(
            Level::Ok,
            what,
            format!("{} mode {m:04o}", path.display()),
        )],
    }
}

/// Days until a certificate expires (negative when expired).
fn days_left(cert: &X509) -> Option<i32> {
    let now = openssl::asn1::Asn1Time::days_from_now(0).ok()?;
    now.diff(cert.not_after()).ok().map(|d| d.days)
}

fn expiry_finding(check: &str, cert: &X509) -> Finding {
    match days_left(cert) {
        Some(d) if d < 0 => finding(
            Level::Fail,
            check,
            format!("expired on {}", cert.not_after()),
        ),
        Some(d) if Duration::from_secs(u64::try_from(d).unwrap_or(0) * 86_400) < EXPIRY_WARNING => {
            finding(
                Level::Warn,
                check,
                format!("expires in {d} days ({}): renew it", cert.not_after()),
            )
        }
        _ => finding(
            Level::Ok,
            check,
            format!("valid until {}", cert.not_after()),
        ),
    }
}

fn check_signing_certificate(settings: &Settings) -> Vec<Finding> {
    let path = &settings.smime.sign_cert;
    let check = "S/MIME signing certificate";
    let certs = match std::fs::read(path).map(|pem| X509::stack_from_pem(&pem)) {
        Ok(Ok(certs)) if !certs.is_empty() => certs,
        _ => {
            return vec![finding(
                Level::Fail,
                check,
                format!("{} holds no readable certificate", path.display()),
            )]
        }
    };
    let cert = &certs[0];
    let mut out = vec![expiry_finding(check, cert)];
    match check_certificate_for_email(cert) {
        // The expiry finding above says it already.
        Ok(()) | Err(CertificateProblem::Expired(_)) => {}
        Err(e) => out.push(finding(
            Level::Fail,
            "S/MIME signing certificate usage",
            e.to_string(),
        )),
    }
    out.push(verify_chain(cert, &certs[1..], &settings.smtp.ca_file));
    out
}

fn verify_chain(cert: &X509, intermediates: &[X509], ca_file: &Path) -> Finding {
    let check = "S/MIME certificate chain";
    let result = (|| -> Result<bool, openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        if ca_file.as_os_str().is_empty() {
            store.set_default_paths()?;
        } else if let Ok(pem) = std::fs::read(ca_file) {
            for ca in X509::stack_from_pem(&pem)? {
                store.add_cert(ca)?;
            }
        }
        let store = store.build();
        let mut chain = openssl::stack::Stack::new()?;
        for c in intermediates {
            chain.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, cert, &chain, |c| c.verify_cert())
    })();
    match result {
        Ok(true) => finding(Level::Ok, check, "verifies against the configured CAs"),
        Ok(false) => finding(
            Level::Warn,
            check,
            "does not verify against the configured CAs (receivers need the agency's CA)",
        ),
        Err(e) => finding(Level::Warn, check, format!("cannot be checked: {e}")),
    }
}

async fn check_relay(settings: &Settings, registry: &[(Kommunkod, Registered)]) -> Vec<Finding> {
    let check = format!("relay {}:{}", settings.smtp.host, settings.smtp.port);
    let relay = match crate::deliver::mail::smtp::Relay::new(&settings.smtp) {
        Ok(r) => r,
        Err(e) => return vec![finding(Level::Fail, check, e.to_string())],
    };
    match relay.probe().await {
        Ok((tls, dsn)) => {
            let mut out = vec![finding(
                Level::Ok,
                check,
                format!(
                    "reachable, {} {}, certificate verified (sha256 {})",
                    tls.version, tls.cipher, tls.server_cert_sha256
                ),
            )];
            match (settings.proof.enabled(), dsn) {
                (true, false) => out.push(finding(
                    Level::Warn,
                    "delivery reports",
                    "the relay does not offer DSN: proof of delivery ends at the relay's 250",
                )),
                (true, true) => out.push(finding(
                    Level::Ok,
                    "delivery reports",
                    format!(
                        "the relay offers DSN; reports come back to {}",
                        settings.proof.return_path
                    ),
                )),
                (false, _) => out.push(finding(
                    Level::Warn,
                    "delivery reports",
                    "[proof] return_path is not set: proof of delivery ends at the relay's 250",
                )),
            }
            for (code, r) in registry {
                if let Some(pin) = &r.tls_pin {
                    if *pin != tls.server_cert_sha256 && *pin != tls.server_key_sha256 {
                        out.push(finding(
                            Level::Warn,
                            format!("TLS pin of {code}"),
                            "does not match the relay's certificate: e-mail to it will wait",
                        ));
                    }
                }
            }
            out
        }
        Err(e) => vec![finding(Level::Fail, check, e.to_string())],
    }
}

/// The connection checks: required or not, the resolver they ask, and the municipalities with
/// an agreed secure connection whose mail servers have not passed one (their decisions go by
/// post).
fn check_connections(
    settings: &Settings,
    checks: &[(Kommunkod, Option<(Verdict, jiff::Timestamp)>)],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let c = &settings.connection;
    match crate::connection::Checker::new(c, &settings.dns) {
        Ok(checker) => {
            out.push(finding(
                Level::Ok,
                "connection check",
                format!(
                    "asks {}; a passing check counts for {}",
                    checker.nameservers().join(", "),
                    humantime::format_duration(c.max_age)
                ),
            ));
            if !checker.trusts_dnssec() {
                out.push(finding(
                    Level::Warn,
                    "connection check",
                    "the resolver is not on this host: its DNSSEC answers cannot be trusted, so \
                     DANE is never applied (run a validating resolver such as unbound here and \
                     name it in [dns] nameservers)",
                ));
            }
        }
        Err(e) => out.push(finding(Level::Fail, "connection check", e.to_string())),
    }
    if !c.required {
        out.push(finding(
            Level::Warn,
            "connection check",
            "[connection] required = false: decisions go by e-mail to municipalities whose mail \
             servers kurir has not verified",
        ));
        return out;
    }
    let now = jiff::Timestamp::now();
    let max_age = jiff::SignedDuration::try_from(c.max_age).unwrap_or(jiff::SignedDuration::MAX);
    let not_passing: Vec<String> = checks
        .iter()
        .filter_map(|(code, checked)| match checked {
            None => Some(format!("{code} (not checked)")),
            Some((Verdict::Failed, _)) => Some(format!("{code} (failed)")),
            Some((Verdict::Passed, at)) if now.duration_since(*at) > max_age => {
                Some(format!("{code} (check too old)"))
            }
            Some(_) => None,
        })
        .collect();
    if not_passing.is_empty() {
        out.push(finding(
            Level::Ok,
            "connection check",
            format!("{} municipalities' mail servers verified", checks.len()),
        ));
    } else {
        out.push(finding(
            Level::Warn,
            "connection check",
            format!(
                "decisions go by post until their mail servers pass: {}",
                not_passing.join(", ")
            ),
        ));
    }
    out
}

fn check_registry(registry: &[(Kommunkod, Registered)], relay: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let secure: Vec<&(Kommunkod, Registered)> = registry
        .iter()
        .filter(|(_, r)| r.secure_connection)
        .collect();
    let unproven: Vec<String> = secure
        .iter()
        .filter(|(_, r)| r.active_address.is_none())
        .map(|(c, _)| c.to_string())
        .collect();
    if unproven.is_empty() {
        out.push(finding(
            Level::Ok,
            "registry",
            format!(
                "{} municipalities with a secure connection, all with a proven address",
                secure.len()
            ),
        ));
    } else {
        out.push(finding(
            Level::Warn,
            "registry",
            format!(
                "secure connection but no proven address (documents go by post): {}",
                unproven.join(", ")
            ),
        ));
    }
    if !secure.is_empty() && !relay {
        out.push(finding(
            Level::Warn,
            "registry",
            "municipalities have secure connections but no relay is configured",
        ));
    }
    for (code, r) in registry {
        if let Some(cert) = r.smime_cert.as_ref().and_then(|c| c.x509().ok()) {
            let f = expiry_finding(&format!("S/MIME certificate of {code}"), &cert);
            if f.level != Level::Ok {
                out.push(f);
            }
        }
    }
    out
}

fn check_spool(settings: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let dir = &settings.spool.dir;
    for (what, folder) in [("spool", dir), ("state", &settings.store.dir)] {
        let check = format!("disk space ({what})");
        let Some(space) = crate::fsutil::space(folder) else {
            continue;
        };
        let detail = format!(
            "{} MB free of {} MB under {}",
            space.free >> 20,
            space.size >> 20,
            folder.display()
        );
        let level = if space.free < 100 << 20 {
            Level::Fail
        } else if space.free < 1 << 30 || space.free_ratio() < 0.10 {
            Level::Warn
        } else {
            Level::Ok
        };
        out.push(finding(level, check, detail));
    }
    let stale: Vec<String> = std::fs::read_dir(dir.join("tmp"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(3600))
                })
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    if stale.is_empty() {
        out.push(finding(Level::Ok, "spool tmp/", "no stale entries"));
    } else {
        out.push(finding(
            Level::Warn,
            "spool tmp/",
            format!(
                "{} entries older than an hour (an interrupted writer?): {}",
                stale.len(),
                stale.join(", ")
            ),
        ));
    }
    out
}

/// `kurir doctor`: prints one line per check and fails if any check fails.
pub fn run(
    settings: &Settings,
    origin: &str,
    daemon: &crate::cli::Daemon<'_>,
) -> anyhow::Result<std::process::ExitCode> {
    use crate::cli::control::ControlError;
    use crate::service::call;
    use anyhow::Context;
    let mut store = finding(
        Level::Ok,
        "store",
        format!("{}", settings.store.dir.join("db").display()),
    );
    let mut checks = Vec::new();
    let registry: Vec<(Kommunkod, Registered)> =
        match daemon.ask(None, call::MunicipalityList { secure_only: false }) {
            Ok(reply) => reply
                .into_iter()
                .map(|row| {
                    if row.registered.secure_connection {
                        checks.push((row.municipality.code, row.checked));
                    }
                    (row.municipality.code, row.registered)
                })
                .collect(),
            // No store here is the finding that matters most: the daemon's work is elsewhere.
            Err(e) if matches!(e.downcast_ref(), Some(ControlError::NoStore { .. })) => {
                store = finding(Level::Fail, "store", e.to_string());
                Vec::new()
            }
            Err(e) => return Err(e),
        };
    let web: Vec<_> = [
        (
            crate::config::WebDoor::Portal,
            daemon.ask(None, call::PortalStatus {}),
        ),
        (
            crate::config::WebDoor::Desk,
            daemon.ask(None, call::DeskStatus {}),
        ),
    ]
    .into_iter()
    .filter_map(|(door, status)| Some((door, status.ok()??)))
    .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let mut findings = runtime.block_on(examine(settings, origin, &registry, &web));
    findings.insert(1.min(findings.len()), store);
    findings.extend(check_connections(settings, &checks));
    let mut worst = Level::Ok;
    for f in &findings {
        say!("{:<5} {}: {}", f.level.as_str(), f.check, f.detail);
        worst = worst.max(f.level);
    }
    Ok(if worst == Level::Fail {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
