//! Where a municipality's decisions go, as one value. Every change of a registration, from any
//! surface (portal, command line, CSV import, proof of an address, approval, domains, grants),
//! is judged by comparing this value before and after — never by which field was typed — so
//! that steps that each look harmless (change the official address, empty the decision
//! address, prove the official one) cannot add up to an unannounced redirect.

use super::{Approval, Registered};

/// What decides where the next decision about a child goes and whom kurir phones when it is
/// not opened: what is in use now, what it is heading to (an address waiting for proof or for
/// approval, the address that takes over if the specific one is removed), and who may change
/// it. Computed from a registration by [`Registered::decision_route`]; two registrations with
/// the same value send the next decision the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionRoute {
    /// The proven address decisions are sent to now (with a secure connection), if any.
    pub address: Option<String>,
    /// Whether the agency has a secure connection with the municipality (e-mail only then).
    pub secure_connection: bool,
    /// The certificate decisions are encrypted to: subject and SHA-256.
    pub certificate: Option<(String, String)>,
    /// The pinned SHA-256 of the receiving server's certificate or key.
    pub tls_pin: Option<String>,
    /// The postal address letters go to (absent: the registry office).
    pub postal_address: Option<Vec<String>>,
    /// The telephone number kurir gives when a decision is not opened.
    pub phone: Option<String>,
    /// The contact people kurir names then: name, phone, e-mail.
    pub contacts: Vec<(String, String, String)>,
    /// The address the municipality asked decisions to go to (the specific one, else the
    /// official one): where decisions go once it is proven.
    pub requested: Option<String>,
    /// The official address: it takes over when the specific one is removed.
    pub official: Option<String>,
    /// An address waiting for its mailed code.
    pub awaiting_proof: Option<String>,
    /// A proven address waiting for the agency's approval.
    pub awaiting_approval: Option<String>,
    /// A postal address waiting for the agency's approval.
    pub postal_awaiting_approval: Option<Vec<String>>,
    /// The mail domains inside which a proven address is used without approval.
    pub domains: Vec<String>,
    /// Who may change the registration on the portal: HSA-id, name, and the CA whose card
    /// it must be.
    pub granted: Vec<(String, String, String)>,
}

impl Registered {
    /// Where decisions go, as one value (see [`DecisionRoute`]).
    pub fn decision_route(&self) -> DecisionRoute {
        let waiting = |f: fn(&Approval) -> Option<&str>| {
            self.awaiting_approval
                .as_ref()
                .and_then(f)
                .map(str::to_string)
        };
        DecisionRoute {
            address: self.active_address.clone(),
            secure_connection: self.secure_connection,
            certificate: self
                .smime_cert
                .as_ref()
                .map(|c| (c.subject.clone(), c.sha256.clone())),
            tls_pin: self.tls_pin.clone(),
            postal_address: self.postal_address.as_ref().map(|p| p.lines()),
            phone: self.phone.clone(),
            contacts: self
                .contacts
                .iter()
                .map(|c| (c.name.clone(), c.phone.clone(), c.email.clone()))
                .collect(),
            requested: self.wanted_address().map(str::to_string),
            official: self.official_email.clone(),
            awaiting_proof: self.pending.as_ref().map(|p| p.address.clone()),
            awaiting_approval: waiting(|a| a.address.as_deref()),
            postal_awaiting_approval: self
                .awaiting_approval
                .as_ref()
                .and_then(|a| a.postal_address.as_ref())
                .map(|p| p.lines()),
            domains: self.domains.clone(),
            granted: self
                .grants
                .iter()
                .map(|g| {
                    (
                        g.hsa_id.clone(),
                        g.name.clone().unwrap_or_default(),
                        g.issuer.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    /// Everyone a change of where decisions go must reach, whoever made it: the address
    /// decisions went to before, and every contact person before and after (so that whoever
    /// replaces the contacts cannot silence the notice, and the new ones learn of it too) —
    /// and, when that leaves nobody who knew the municipality before, the people last told
    /// ([`Registered::last_told`]): steps that first empty the registration and then fill it
    /// in again are announced to the people who had it.
    pub fn to_be_told(before: &Registered, after: &Registered) -> Vec<String> {
        let mut to: Vec<String> = Vec::new();
        let mut add = |address: &String| {
            if !to.iter().any(|t| t.eq_ignore_ascii_case(address)) {
                to.push(address.clone());
            }
        };
        let knew = before.known_people();
        knew.iter().for_each(&mut add);
        if knew.is_empty() {
            before.last_told.iter().for_each(&mut add);
        }
        after
            .contacts
            .iter()
            .map(|c| c.email.clone())
            .for_each(|a| add(&a));
        to
    }

    /// The proven address and the contacts' addresses: who knows the registration now.
    fn known_people(&self) -> Vec<String> {
        self.active_address
            .iter()
            .cloned()
            .chain(self.contacts.iter().map(|c| c.email.clone()))
            .collect()
    }

    /// Keeps [`Registered::last_told`]: the people who know the registration now, or, when a
    /// change left none, those who knew it before.
    pub fn remember_who_knows(&mut self, before: &Registered) {
        let now = self.known_people();
        self.last_told = if now.is_empty() {
            let then = before.known_people();
            if then.is_empty() {
                before.last_told.clone()
            } else {
                then
            }
        } else {
            now
        };
    }
}

/// Why a recipient gets post rather than e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostReason {
    /// No SMTP relay is configured.
    NoRelay,
    /// The municipality has no secure connection.
    NoSecureConnection,
    /// It has one, but no address has been proven to work yet.
    NoVerifiedAddress,
    /// kurir has not yet checked the mail servers of the address's domain.
    ConnectionNotChecked,
    /// kurir's latest check of the municipality's mail servers failed.
    ConnectionFailed,
    /// kurir's latest passing check is older than `[connection] max_age`.
    ConnectionCheckOutdated,
}

impl PostReason {
    /// Words for the job's history.
    pub fn describe(self) -> &'static str {
        match self {
            PostReason::NoRelay => "no SMTP relay configured",
            PostReason::NoSecureConnection => "municipality has no secure connection",
            PostReason::NoVerifiedAddress => "no verified secure address",
            PostReason::ConnectionNotChecked => {
                "the municipality's mail servers are not checked yet"
            }
            PostReason::ConnectionFailed => "the check of the municipality's mail servers failed",
            PostReason::ConnectionCheckOutdated => {
                "the last check of the municipality's mail servers is too old"
            }
        }
    }
}

/// Where one recipient's documents go, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Protected e-mail to this address.
    Email {
        /// The verified address.
        address: String,
    },
    /// A printed letter.
    Post {
        /// Why not e-mail.
        reason: PostReason,
    },
}

impl Route {
    /// The channel this route uses.
    pub fn channel(&self) -> crate::state::Channel {
        match self {
            Route::Email { .. } => crate::state::Channel::Email,
            Route::Post { .. } => crate::state::Channel::Post,
        }
    }
}
