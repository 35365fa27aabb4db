//! `kurir municipality …`: what municipality IT registers, through the operator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::Value;

use crate::cli::control::Request;
use crate::job::Kommunkod;
use crate::registry::{Changes, Registered, RegistryChange};

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
    /// Send a one-time code to the pending address over the protected route.
    Verify {
        /// Kommunkod.
        code: Kommunkod,
        /// Who asks (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Make the pending address active with the code it received.
    Confirm {
        /// Kommunkod.
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
        code: Kommunkod,
        /// The person's HSA-id (SE + organisation number + '-' + id).
        #[arg(long, value_name = "HSA_ID")]
        hsa_id: String,
        /// The person's name, shown in the history.
        #[arg(long)]
        name: Option<String>,
        /// Who grants it (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Withdraw a person's portal access to the municipality.
    Revoke {
        /// Kommunkod.
        code: Kommunkod,
        /// The person's HSA-id.
        #[arg(long, value_name = "HSA_ID")]
        hsa_id: String,
        /// Who withdraws it (default: the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Every change to a registration: who, when, what, before and after.
    History {
        /// Kommunkod.
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

/// Runs a municipality command; `ask` reaches the daemon or the store.
pub fn run(
    command: MunicipalityCommand,
    ask: &dyn Fn(Request) -> anyhow::Result<Value>,
) -> anyhow::Result<ExitCode> {
    let operator = |o: Option<String>| o.unwrap_or_else(crate::cli::os_user);
    match command {
        MunicipalityCommand::List { secure, json } => {
            let result = ask(Request::MunicipalityList {
                secure_only: secure,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<5} {:<24} {:<6} {:<36} {:<8} {:<6} CERT",
                "CODE", "NAME", "SECURE", "ACTIVE ADDRESS", "PENDING", "POSTAL"
            );
            for row in result.as_array().into_iter().flatten() {
                let m = &row["municipality"];
                let r: Registered = serde_json::from_value(row["registered"].clone())?;
                println!(
                    "{:<5} {:<24} {:<6} {:<36} {:<8} {:<6} {}",
                    m["code"].as_str().unwrap_or(""),
                    m["name"].as_str().unwrap_or(""),
                    if r.secure_connection { "yes" } else { "no" },
                    r.active_address.as_deref().unwrap_or("-"),
                    if r.pending.is_some() { "yes" } else { "-" },
                    if r.postal_address.is_some() {
                        "yes"
                    } else {
                        "-"
                    },
                    if r.smime_cert.is_some() { "yes" } else { "-" },
                );
            }
        }
        MunicipalityCommand::Show { code, json } => {
            let result = ask(Request::MunicipalityShow { code })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
                return Ok(ExitCode::SUCCESS);
            }
            let m = &result["municipality"];
            let r: Registered = serde_json::from_value(result["registered"].clone())?;
            let or_dash = |v: Option<&str>| v.unwrap_or("-").to_string();
            println!("kommunkod        {}", m["code"].as_str().unwrap_or(""));
            println!("name             {}", m["name"].as_str().unwrap_or(""));
            println!(
                "route now        {}",
                result["route"].as_str().unwrap_or("")
            );
            println!(
                "secure           {}",
                if r.secure_connection { "yes" } else { "no" }
            );
            println!("official e-mail  {}", or_dash(r.official_email.as_deref()));
            println!("decision e-mail  {}", or_dash(r.decision_email.as_deref()));
            println!("active address   {}", or_dash(r.active_address.as_deref()));
            if let Some(p) = &r.pending {
                let code_state = match (&p.code_sha256, p.code_expires) {
                    (Some(_), Some(exp)) => format!("code sent, valid until {exp}"),
                    _ => format!("run `kurir municipality verify {code}`"),
                };
                println!("pending address  {} ({code_state})", p.address);
            }
            println!("phone            {}", or_dash(r.phone.as_deref()));
            for c in &r.contacts {
                println!("contact          {c}");
            }
            match &r.postal_address {
                Some(a) => println!("postal address   {}", a.lines().join(", ")),
                None => println!("postal address   - (letters go to the registry office)"),
            }
            match &r.smime_cert {
                Some(c) => println!(
                    "S/MIME cert      {} (sha256 {}, valid until {})",
                    c.subject, c.sha256, c.not_after
                ),
                None => println!("S/MIME cert      - (messages are signed, not encrypted)"),
            }
            println!("TLS pin          {}", or_dash(r.tls_pin.as_deref()));
            for g in &r.grants {
                println!(
                    "portal access    {}{}",
                    g.hsa_id,
                    g.name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                );
            }
        }
        MunicipalityCommand::Grant {
            code,
            hsa_id,
            name,
            operator,
        } => {
            ask(Request::MunicipalityGrant {
                code,
                hsa_id: hsa_id.clone(),
                name,
                operator: operator.unwrap_or_else(crate::cli::os_user),
            })?;
            println!("{hsa_id} may now manage kommun {code} in the portal");
        }
        MunicipalityCommand::Revoke {
            code,
            hsa_id,
            operator,
        } => {
            ask(Request::MunicipalityRevoke {
                code,
                hsa_id: hsa_id.clone(),
                operator: operator.unwrap_or_else(crate::cli::os_user),
            })?;
            println!("{hsa_id} may no longer manage kommun {code}");
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
            operator: who,
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
            let result = ask(Request::MunicipalitySet {
                code,
                changes,
                operator: operator(who),
            })?;
            print_changes(code, &result["changes"]);
            if let Some(p) = result["registered"]["pending"]["address"].as_str() {
                println!(
                    "{code}: {p} is pending; documents go to the proven address (or by post) until \
                     `kurir municipality verify {code}` and `confirm` prove it"
                );
            }
        }
        MunicipalityCommand::Verify {
            code,
            operator: who,
        } => {
            let result = ask(Request::MunicipalityVerify {
                code,
                operator: operator(who),
            })?;
            println!(
                "{code}: verification code sent to {} (valid until {}); server replied: {}",
                result["address"].as_str().unwrap_or(""),
                result["expires"].as_str().unwrap_or(""),
                result["reply"].as_str().unwrap_or("")
            );
        }
        MunicipalityCommand::Confirm {
            code,
            verification_code,
            operator: who,
        } => {
            let result = ask(Request::MunicipalityConfirm {
                code,
                secret: verification_code,
                operator: operator(who),
            })?;
            println!(
                "{code}: {} is now the active address",
                result["active_address"].as_str().unwrap_or("")
            );
        }
        MunicipalityCommand::History { code, json } => {
            let result = ask(Request::MunicipalityHistory { code })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
                return Ok(ExitCode::SUCCESS);
            }
            let changes: Vec<RegistryChange> = serde_json::from_value(result)?;
            for c in changes {
                println!("{}  {}  {}", c.at, c.operator, c.what);
                let (Ok(Value::Object(before)), Ok(Value::Object(after))) = (
                    serde_json::to_value(&c.before),
                    serde_json::to_value(&c.after),
                ) else {
                    continue;
                };
                for (field, value) in &after {
                    if before.get(field) != Some(value) {
                        println!(
                            "    {field}: {} -> {}",
                            short(before.get(field).unwrap_or(&Value::Null)),
                            short(value)
                        );
                    }
                }
            }
        }
        MunicipalityCommand::Import {
            file,
            dry_run,
            operator: who,
        } => {
            let csv = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let result = ask(Request::MunicipalityImport {
                csv,
                dry_run,
                operator: operator(who),
            })?;
            let list = result["municipalities"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for m in &list {
                let code: Kommunkod = serde_json::from_value(m["kommunkod"].clone())?;
                print_changes(code, &m["changes"]);
            }
            if dry_run {
                println!(
                    "dry run: {} municipalities would change; nothing was written",
                    list.len()
                );
            } else {
                println!("{} municipalities changed", list.len());
            }
        }
        MunicipalityCommand::Export => {
            let result = ask(Request::MunicipalityExport)?;
            print!("{}", result.as_str().unwrap_or(""));
        }
    }
    Ok(ExitCode::SUCCESS)
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

fn print_changes(code: Kommunkod, changes: &Value) {
    let list = changes.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("{code}: no change");
    }
    for c in list {
        println!(
            "{code}: {}: {} -> {}",
            c["field"].as_str().unwrap_or(""),
            short(&c["before"]),
            short(&c["after"])
        );
    }
}
