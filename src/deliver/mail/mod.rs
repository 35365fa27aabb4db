//! The e-mail deliverer: one attempt to one municipality, from the registry's proven address
//! to a classified outcome the queue can record.
//!
//! The route is looked up again at every attempt, so a municipality that withdrew its secure
//! connection, or whose proven address changed, is never sent to on stale facts.

pub mod compose;
pub mod smime;
pub mod smtp;

use std::sync::Arc;

use jiff::Timestamp;

use crate::config::{SenderSettings, SmtpSettings};
use crate::deliver::mail::compose::{Attachment, DecisionMail, MailFrom};
use crate::deliver::mail::smime::Signer;
use crate::deliver::mail::smtp::{
    Accepted, CommitToken, DirectTarget, Relay, ReportRequest, SendError,
};
use crate::fsutil;
use crate::intake::route::{self, PostReason, Route};
use crate::job::{Kommunkod, RecipientRole};
use crate::registry::connection::{ConnectionCheck, Dane, MtaSts, StsMode, Verdict};
use crate::registry::{Registered, Seed};
use crate::report_token::TokenKey;
use crate::spool::Spool;
use crate::store::state::{EmailProof, FinalHop, JobRecord};
use crate::store::Store;

/// What one attempt came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The server accepted the message.
    Accepted(Box<EmailProof>),
    /// Try again later (4xx, connection or TLS failure; nothing was sent over a weaker route).
    Deferred {
        /// The address tried.
        address: String,
        /// Why.
        reason: String,
        /// The failure was TLS itself.
        tls: bool,
        /// The relay itself failed (connect, TLS): all its jobs should wait.
        relay: bool,
    },
    /// It may have been delivered: the connection broke after the message was sent.
    Unknown {
        /// The address tried.
        address: String,
        /// Why.
        reason: String,
    },
    /// 5xx: this address will not take it; the recipient falls back to post.
    Rejected {
        /// The address tried.
        address: String,
        /// The server's reply.
        reply: String,
    },
    /// The routing rule no longer gives e-mail: post instead.
    NoRoute(PostReason),
    /// kurir could not even compose the message (a defect or a broken file): try later.
    Failed(String),
}

/// One attempt: what came of it, the Message-ID of the message if one was composed (the same
/// on every attempt), and the token to hold until the outcome is recorded.
pub struct Attempted {
    /// What came of it.
    pub outcome: Outcome,
    /// The message's Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// Held until the outcome is recorded (see [`CommitToken`]).
    pub commit: Option<CommitToken>,
}

/// The deliverer and everything it needs.
pub struct Mailer {
    relay: Arc<Relay>,
    /// Direct mode: a client per municipality mail server, as the checks found them.
    direct: Option<Direct>,
    /// With `[proof] return_path`: the key that signs each recipient's return address, and
    /// the base address.
    reports: Option<(TokenKey, String)>,
    signer: Arc<Signer>,
    settings: SmtpSettings,
    sender: Arc<SenderSettings>,
    store: Store,
    seed: Arc<Seed>,
    spool: Spool,
    max_pdf_bytes: u64,
    connection_rule: crate::store::ConnectionRule,
}

/// Direct mode's state: the MX clients and how to have a domain checked.
struct Direct {
    port: u16,
    ca_file: std::path::PathBuf,
    max_age: jiff::SignedDuration,
    clients: std::sync::Mutex<std::collections::HashMap<DirectTarget, Arc<Relay>>>,
    on_demand: std::sync::OnceLock<Arc<dyn OnDemandCheck>>,
}

/// Checks a domain's mail servers now and records the check (the service does, where every
/// check is recorded and its consequences follow): direct mode asks it before sending where no
/// recent passing check covers the recipient's domain.
pub trait OnDemandCheck: Send + Sync {
    /// The check just made, or `None` if none could be.
    fn check_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<ConnectionCheck>> + Send + 'a>>;
}

/// Why the mailer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The relay settings are unusable.
    #[error(transparent)]
    Relay(#[from] crate::deliver::mail::smtp::SetupError),
    /// The signing identity is unusable.
    #[error(transparent)]
    Smime(#[from] crate::deliver::mail::smime::SmimeError),
}

impl Mailer {
    /// Sets up the relay client and loads the signing identity.
    pub fn new(
        settings: &crate::config::Settings,
        store: Store,
        seed: Arc<Seed>,
    ) -> Result<Mailer, MailerError> {
        let relay = Arc::new(Relay::new(&settings.smtp)?);
        let direct = (settings.smtp.mode == crate::config::SmtpMode::Direct).then(|| Direct {
            port: settings.connection.port,
            ca_file: settings.connection.ca_file.clone(),
            max_age: jiff::SignedDuration::try_from(settings.connection.max_age)
                .unwrap_or(jiff::SignedDuration::from_hours(24 * 7)),
            clients: std::sync::Mutex::new(std::collections::HashMap::new()),
            on_demand: std::sync::OnceLock::new(),
        });
        let signer = Signer::load(&settings.smime.sign_cert, &settings.smime.sign_key)?;
        Ok(Mailer {
            relay,
            direct,
            reports: None,
            signer: Arc::new(signer),
            settings: settings.smtp.clone(),
            sender: Arc::new(settings.sender.clone()),
            store,
            seed,
            spool: Spool::new(&settings.spool.dir),
            max_pdf_bytes: settings.spool.max_pdf_bytes,
            connection_rule: crate::store::ConnectionRule::from_settings(&settings.connection),
        })
    }

    /// Asks for delivery reports and read notifications on every decision from now on, with
    /// return addresses `base` + `+<token>` signed by `key` (see [`crate::report_token`]).
    pub fn ask_for_reports(&mut self, key: TokenKey, base: String) {
        self.reports = Some((key, base));
    }

    /// Direct mode: lets the mailer have a domain checked when it must send somewhere no
    /// recent passing check covers (a notice to a contact, a verification code).
    pub fn set_on_demand(&self, checker: Arc<dyn OnDemandCheck>) {
        if let Some(direct) = &self.direct {
            let _ = direct.on_demand.set(checker);
        }
    }

    /// The client that takes mail for `address` now: the relay, or (direct mode) the first
    /// verified MX of the latest passing check of its domain, with the hop to record.
    async fn client_for(&self, address: &str) -> Result<(Arc<Relay>, Option<FinalHop>), SendError> {
        let Some(direct) = &self.direct else {
            return Ok((self.relay.clone(), None));
        };
        let no_route = |why: String| SendError::Tls(why);
        let domain = crate::registry::connection::domain_of(address)
            .ok_or_else(|| SendError::Permanent(format!("{address:?} has no domain")))?;
        let store = self.store.clone();
        let key = domain.clone();
        let mut check = tokio::task::spawn_blocking(move || store.latest_check(&key))
            .await
            .map_err(|e| no_route(e.to_string()))?
            .map_err(|e| no_route(e.to_string()))?;
        let fresh = |c: &Option<ConnectionCheck>| {
            c.as_ref().is_some_and(|c| {
                c.verdict == Verdict::Passed
                    && Timestamp::now().duration_since(c.checked_at) <= direct.max_age
            })
        };
        // Checked again only when the last check is over an hour old (or there is none): a
        // failing or slow domain cannot make every send a new check.
        let recent = check.as_ref().is_some_and(|c| {
            Timestamp::now().duration_since(c.checked_at) < jiff::SignedDuration::from_hours(1)
        });
        if !fresh(&check) && !recent {
            if let Some(on_demand) = direct.on_demand.get() {
                check = on_demand.check_domain(&domain).await;
            }
        }
        if !fresh(&check) {
            return Err(no_route(format!(
                "no recent passing check of {domain}'s mail servers: not sent (direct mode \
                 delivers only to servers kurir verified)"
            )));
        }
        let check = check.ok_or_else(|| no_route("no check".into()))?;
        let mx = check
            .mx
            .iter()
            .find(|m| m.passed && m.address.is_some())
            .ok_or_else(|| no_route(format!("no verified MX of {domain}")))?;
        let address = mx
            .address
            .as_deref()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .ok_or_else(|| no_route(format!("{}: no address", mx.host)))?;
        let dane = mx.dane == Dane::Matched;
        let target = DirectTarget {
            host: mx.host.clone(),
            address,
            port: direct.port,
            pinned: if dane {
                mx.tls.as_ref().map(|t| t.cert_sha256.clone())
            } else {
                None
            },
        };
        let hop = FinalHop {
            mx: mx.host.clone(),
            address: address.to_string(),
            dane,
            mta_sts: matches!(
                &check.mta_sts,
                MtaSts::Policy {
                    mode: StsMode::Enforce,
                    covers_every_mx: true,
                    ..
                }
            ),
        };
        let client = {
            let mut clients = direct.clients.lock().unwrap_or_else(|p| p.into_inner());
            match clients.get(&target) {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(
                        Relay::direct(&self.settings, &target, &direct.ca_file)
                            .map_err(|e| no_route(e.to_string()))?,
                    );
                    clients.insert(target, c.clone());
                    c
                }
            }
        };
        Ok((client, Some(hop)))
    }

    /// When the agency's signing certificate expires (seconds since the Unix epoch).
    pub fn signing_certificate_expires_at(&self) -> Option<i64> {
        self.signer.expires_at_unix()
    }

    /// The agency's sender address.
    pub fn from_address(&self) -> &str {
        &self.settings.from
    }

    /// The relay, `host:port` (or, in direct mode, that there is none).
    pub fn relay(&self) -> String {
        match self.direct {
            Some(_) => "direct to each municipality's verified MX".into(),
            None => self.relay.endpoint(),
        }
    }

    fn name(&self, code: Kommunkod) -> String {
        self.seed
            .get(code)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("kommun {code}"))
    }

    /// One attempt to deliver `job` to the recipient `code` by e-mail. Hold the returned
    /// token until the outcome is recorded (see [`CommitToken`]).
    pub async fn attempt(&self, job: &JobRecord, code: Kommunkod) -> Attempted {
        let mut attempted = Attempted {
            outcome: Outcome::Failed(String::new()),
            message_id: None,
            commit: None,
        };
        attempted.outcome = self.attempt_inner(job, code, &mut attempted).await;
        attempted
    }

    async fn attempt_inner(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        attempted: &mut Attempted,
    ) -> Outcome {
        let registered = match self.store.registered(code) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        // The registry may have changed since intake routed the job: the same rule, again.
        let address =
            match route::route_registered(&self.store, &registered, true, self.connection_rule) {
                Ok(Route::Email { address }) => address,
                Ok(Route::Post { reason }) => return Outcome::NoRoute(reason),
                Err(e) => return Outcome::Failed(e.to_string()),
            };
        let role = job
            .recipients
            .iter()
            .find(|r| r.kommunkod == code)
            .map(|r| r.role)
            .unwrap_or(RecipientRole::Assigned);
        let request = match &self.reports {
            Some((key, base)) => match key.return_path(base, &job.id, code) {
                Ok(return_path) => Some(ReportRequest {
                    return_path,
                    envelope_id: format!("{}.{code}", job.id),
                }),
                Err(e) => return Outcome::Failed(format!("return address: {e}")),
            },
            None => None,
        };
        let notify_to = request.as_ref().map(|r| r.return_path.clone());
        let composed = match self
            .compose_decision(job, code, role, &address, &registered, notify_to)
            .await
        {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e),
        };
        attempted.message_id = Some(composed.message_id.clone());
        let pin = registered.tls_pin.as_deref();
        let (client, final_hop) = match self.client_for(&address).await {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Deferred {
                    address,
                    tls: e.is_tls(),
                    relay: false,
                    reason: e.to_string(),
                }
            }
        };
        let (result, commit) = client
            .send_committed(&address, &composed.bytes, pin, request.as_ref())
            .await;
        attempted.commit = commit;
        match result {
            Ok(Accepted {
                reply,
                tls,
                dsn_requested,
            }) => Outcome::Accepted(Box::new(EmailProof {
                at: Timestamp::now(),
                address,
                smtp: crate::store::state::SmtpReply::parse(&reply),
                reply,
                relay: client.endpoint(),
                tls_version: tls.version,
                tls_cipher: tls.cipher,
                server_cert_sha256: tls.server_cert_sha256,
                signed_by_sha256: self.signer.fingerprint().to_string(),
                encrypted: composed.encrypted_to.is_some(),
                encrypted_to_sha256: composed.encrypted_to,
                message_sha256: composed.sha256,
                return_path: request.map(|r| r.return_path),
                dsn_requested,
                final_hop,
            })),
            Err(SendError::Permanent(reply)) => Outcome::Rejected { address, reply },
            Err(SendError::Unknown(reason)) => Outcome::Unknown { address, reason },
            Err(e) => Outcome::Deferred {
                address,
                tls: e.is_tls(),
                relay: e.is_relay_failure(),
                reason: e.to_string(),
            },
        }
    }

    /// Runs a composition on the blocking pool with the agency's identity: every message is
    /// signed with RSA (and maybe encrypted), a good part of a millisecond that would stall
    /// the other connections served by an async worker.
    async fn compose_off_async<F>(&self, compose: F) -> Result<compose::Composed, String>
    where
        F: FnOnce(&Signer, MailFrom<'_>, &SenderSettings) -> Result<compose::Composed, String>
            + Send
            + 'static,
    {
        let signer = self.signer.clone();
        let sender = self.sender.clone();
        let from_address = self.settings.from.clone();
        let from_name = self.settings.from_name.clone();
        tokio::task::spawn_blocking(move || {
            let from = MailFrom {
                address: &from_address,
                name: &from_name,
            };
            compose(&signer, from, &sender)
        })
        .await
        .map_err(|e| format!("composing the message: {e}"))?
    }

    /// Reads the documents and builds the signed (and maybe encrypted) message, off the
    /// async threads: it is file I/O and public-key cryptography.
    async fn compose_decision(
        &self,
        job: &JobRecord,
        code: Kommunkod,
        role: RecipientRole,
        address: &str,
        registered: &Registered,
        notify_to: Option<String>,
    ) -> Result<compose::Composed, String> {
        let dir = self.spool.active_job(&job.id);
        let documents = job.documents.clone();
        let max = self.max_pdf_bytes;
        let to = address.to_string();
        let job_id = job.id.clone();
        let cert = registered.smime_cert.clone();
        let copy_of = match role {
            RecipientRole::Copy => job.to.map(|c| self.name(c)),
            RecipientRole::Assigned => None,
        };
        self.compose_off_async(move |signer, from, sender| {
            let mut contents = Vec::with_capacity(documents.len());
            for (i, doc) in documents.iter().enumerate() {
                let bytes = fsutil::read_checked(&dir.join(&doc.file), max, &doc.sha256)
                    .map_err(|e| format!("reading document {}: {e}", i + 1))?;
                contents.push(bytes);
            }
            let mail = DecisionMail {
                from,
                to: &to,
                kommunkod: code,
                job_id: &job_id,
                copy_of,
                documents: documents
                    .iter()
                    .zip(&contents)
                    .map(|(d, bytes)| Attachment {
                        kind: d.kind,
                        pages: d.pages,
                        bytes,
                    })
                    .collect(),
                sender,
                notify_to: notify_to.as_deref(),
            };
            compose::decision(&mail, signer, cert.as_ref()).map_err(|e| e.to_string())
        })
        .await
    }

    /// Sends a signed notice (an alert) to `to`.
    pub async fn send_notice(
        &self,
        to: &str,
        subject: String,
        body: String,
    ) -> Result<String, String> {
        let recipient = to.to_string();
        let composed = self
            .compose_off_async(move |signer, from, _| {
                compose::notice(&from, &recipient, subject, body, signer).map_err(|e| e.to_string())
            })
            .await?;
        let (client, _) = self.client_for(to).await.map_err(|e| e.to_string())?;
        let accepted = client
            .send(to, &composed.bytes, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(accepted.reply)
    }

    /// Sends the verification code for the municipality's pending address over the same route
    /// decisions take (relay, verified TLS, pin, S/MIME).
    pub async fn send_verification(
        &self,
        code: Kommunkod,
        registered: &Registered,
        secret: &str,
    ) -> Result<String, String> {
        let pending = registered
            .pending
            .as_ref()
            .ok_or_else(|| format!("kommun {code} has no address waiting for verification"))?;
        let name = self.name(code);
        let to = pending.address.clone();
        let secret = secret.to_string();
        let cert = registered.smime_cert.clone();
        let composed = self
            .compose_off_async(move |signer, from, sender| {
                let mail = compose::VerificationMail {
                    from,
                    to: &to,
                    kommunkod: code,
                    municipality_name: &name,
                    code: &secret,
                    sender,
                };
                compose::verification(&mail, signer, cert.as_ref()).map_err(|e| e.to_string())
            })
            .await?;
        let (client, _) = self
            .client_for(&pending.address)
            .await
            .map_err(|e| e.to_string())?;
        let accepted = client
            .send(
                &pending.address,
                &composed.bytes,
                registered.tls_pin.as_deref(),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(accepted.reply)
    }
}
