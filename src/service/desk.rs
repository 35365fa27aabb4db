//! The dispatch desk's side of the service: who of the agency's staff may use it, drafts and
//! sending, the recent jobs with their proof chains, one job's page and its receipt for the
//! case file. Reading a job here is recorded in the audit chain like changing it.

use jiff::Timestamp;

use super::call::{DeskFilter, DeskView};
use super::reply::{DeskJob, DeskRow, DraftPreview, OpenAlert, ProofChain, RoutePreview};
use super::{Core, Principal, ServiceError};
use crate::intake::draft::{self, DraftDocument, DraftId};
use crate::intake::route;
use crate::intake::submit::JobContents;
use crate::job::{CaseNumber, DocumentKind, JobId, Kommunkod, Manifest};
use crate::registry::{check_hsa_id, Person, StaffGrant, StaffRole};
use crate::store::state::{JobRecord, ReportKind};
use kurir_protocol::draft::{DraftFixes, DraftOutcome, DraftProblem};

/// How long sending from the desk waits for intake to take the job in before it answers.
const TAKE_IN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A file name as the person's browser gave it, shown back to them: no control characters,
/// at most 120 characters.
fn tidy_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// How a draft names its owner: the HSA-id and the card's CA, so that a card from another CA
/// with the same HSA-id cannot send it.
fn owner_of(person: &Person) -> String {
    format!(
        "{}\n{}",
        person.hsa_id,
        person.issuer.as_deref().unwrap_or("")
    )
}

impl Core {
    pub(super) fn staff_grant(
        &self,
        principal: &Principal,
        hsa_id: String,
        name: String,
        role: StaffRole,
        issuer: Option<String>,
    ) -> Result<Vec<StaffGrant>, ServiceError> {
        check_hsa_id(&hsa_id)?;
        let issuer = issuer
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .or_else(|| self.default_issuer(crate::config::WebDoor::Desk))
            .ok_or(ServiceError::IssuerRequired)?;
        let issuer = Some(issuer);
        let grant = StaffGrant {
            hsa_id: hsa_id.clone(),
            name,
            role,
            issuer,
            granted_by: principal.recorded_as(),
            granted_at: Timestamp::now(),
        };
        self.store
            .set_staff(&hsa_id, Some(&grant), &principal.recorded_as())?;
        Ok(vec![grant])
    }

    pub(super) fn staff_revoke(
        &self,
        principal: &Principal,
        hsa_id: String,
    ) -> Result<Vec<StaffGrant>, ServiceError> {
        match self.store.staff_grant(&hsa_id)? {
            None => Err(ServiceError::NotStaff(hsa_id)),
            Some(_) => {
                self.store
                    .set_staff(&hsa_id, None, &principal.recorded_as())?;
                Ok(Vec::new())
            }
        }
    }

    /// The staff grant that admits `person`, if any.
    pub(super) fn desk_grant(&self, person: &Person) -> Result<Option<StaffGrant>, ServiceError> {
        Ok(self
            .store
            .staff_grant(&person.hsa_id)?
            .filter(|g| g.admits(person)))
    }

    /// Checks a decision from the desk. Everything is checked, whatever fails: the person
    /// fixes every problem in one go. Documents not chosen again come from what was kept at the
    /// last try; those that pass are kept again while anything else must be fixed.
    pub(super) fn desk_draft(
        &self,
        person: &Person,
        q: super::call::DeskDraft,
    ) -> Result<DraftOutcome, ServiceError> {
        let owner = owner_of(person);
        let max = self.pdf_limits.max_bytes;
        let kept = match &q.kept {
            Some(id) => draft::kept(&self.spool, id, &owner, max),
            None => Vec::new(),
        };
        let mut problems = Vec::new();
        let to = q.to.filter(|code| self.seed.require(*code).is_ok());
        if to.is_none() {
            problems.push(DraftProblem::Municipality);
        }
        let case = q.case.trim().parse::<CaseNumber>();
        if case.is_err() {
            problems.push(DraftProblem::CaseNumber);
        }
        let mut copies = Vec::new();
        for code in &q.copy_to {
            self.seed.require(*code)?;
            if Some(*code) == to {
                problems.push(DraftProblem::CopyToAssigned);
            } else if !copies.contains(code) {
                copies.push(*code);
            }
        }
        copies.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        // Each kind as chosen now, else as kept; each checked as `kurir submit` checks it.
        let mut passed: Vec<(draft::KeptDocument, DraftDocument)> = Vec::new();
        for kind in [DocumentKind::Anvisningsbeslut, DocumentKind::GodMan] {
            let chosen = q
                .documents
                .iter()
                .find(|u| u.kind == kind && !u.bytes.is_empty())
                .map(|u| (kind, u.bytes.clone(), tidy_name(&u.name)))
                .or_else(|| {
                    kept.iter()
                        .find(|k| k.0 == kind && !q.without.contains(&kind))
                        .cloned()
                });
            let Some(document) = chosen else {
                if kind == DocumentKind::Anvisningsbeslut {
                    problems.push(DraftProblem::NoDecision);
                }
                continue;
            };
            match crate::pdf::validate(&document.1, &self.pdf_limits) {
                Ok(summary) => {
                    let held = DraftDocument {
                        kind,
                        pages: summary.pages,
                        sha256: summary.sha256,
                        name: document.2.clone(),
                    };
                    passed.push((document, held));
                }
                Err(reason) => problems.push(DraftProblem::Document { kind, reason }),
            }
        }
        if let Some(id) = &q.kept {
            draft::discard(&self.spool, id, &owner);
        }
        let (Some(to), Ok(case), true) = (to, case, problems.is_empty() && !q.incomplete) else {
            let kept_now: Vec<draft::KeptDocument> =
                passed.iter().map(|(k, _)| k.clone()).collect();
            let kept = match kept_now.is_empty() {
                true => None,
                false => Some(draft::keep(&self.spool, &owner, &kept_now)?),
            };
            return Ok(DraftOutcome::NeedsFixing(DraftFixes {
                problems,
                kept,
                documents: passed.into_iter().map(|(_, held)| held).collect(),
            }));
        };
        // Checked above, each once: written as they are.
        let (documents, held): (Vec<_>, Vec<_>) = passed
            .into_iter()
            .map(|((kind, bytes, _), held)| ((kind, bytes), held))
            .unzip();
        let job = JobContents {
            to,
            case: case.clone(),
            copy_to: copies.clone(),
            documents,
            submission_key: None,
        };
        let draft = draft::keep_checked(&self.spool, &owner, &job)?;
        let routes = std::iter::once(to)
            .chain(copies.iter().copied())
            .map(|code| {
                let registered = self.store.registered(code)?;
                Ok(RoutePreview {
                    kommunkod: code,
                    name: self.name_of(code),
                    route: route::route_registered(
                        &self.store,
                        &registered,
                        self.relay_configured,
                        self.connection_rule,
                    )?,
                    held: self.store.holds()?.iter().any(|(k, _)| *k == code),
                    checked: self.last_checked(&registered)?,
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(DraftOutcome::Ready(Box::new(DraftPreview {
            draft,
            case: case.expose().to_string(),
            routes,
            documents: held,
        })))
    }

    pub(super) fn desk_draft_document(
        &self,
        person: &Person,
        draft: DraftId,
        kind: crate::job::DocumentKind,
    ) -> Result<kurir_protocol::call::DraftFile, ServiceError> {
        let bytes = draft::document(
            &self.spool,
            &draft,
            &owner_of(person),
            kind,
            self.pdf_limits.max_bytes,
        )?;
        // A decision's document read on the desk, like every read of a job: not yet a job,
        // so named by its kind.
        self.store.audit_operator(crate::store::audit::Draft {
            kind: crate::store::audit::AuditKind::View,
            job_id: None,
            kommunkod: None,
            state: None,
            operator: Some(person.on_desk()),
            action: "a draft's document opened on the dispatch desk".into(),
            data: serde_json::json!({ "document": kind.as_str() }),
        })?;
        Ok(kurir_protocol::call::DraftFile { bytes })
    }

    pub(super) fn desk_send(&self, person: &Person, draft: DraftId) -> Result<JobId, ServiceError> {
        let id = draft::send(&self.spool, &draft, &owner_of(person))?;
        self.store.record_desk_send(&id, &person.on_desk())?;
        tracing::info!(job_id = %id, hsa_id = %person.hsa_id, "decision sent from the dispatch desk");
        // The person is shown the job next: give intake (woken by the rename) a moment to take
        // it in, so the page shows the job rather than nothing. Intake is usually done within
        // milliseconds; in a burst the page says the job is being taken in.
        let deadline = std::time::Instant::now() + TAKE_IN_WAIT;
        while self.store.get(&id)?.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(id)
    }

    fn name_of(&self, code: Kommunkod) -> String {
        self.seed
            .get(code)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("kommun {code}"))
    }

    /// The case number in the job's manifest, while its folder is in the spool (retention
    /// removes it with the documents; the store never holds it).
    pub(super) fn case_of(&self, id: &JobId) -> Option<String> {
        let text = std::fs::read_to_string(self.spool.active_job(id).join("job.toml")).ok()?;
        let manifest = Manifest::parse(&text, 64).ok()?;
        Some(manifest.case.expose().to_string())
    }

    fn chains(&self, job: &JobRecord) -> Vec<ProofChain> {
        job.recipients
            .iter()
            .map(|r| {
                let email = r.email.as_ref();
                let confirmation = email.and_then(|e| e.confirmation());
                ProofChain {
                    kommunkod: r.kommunkod,
                    name: self.name_of(r.kommunkod),
                    role: r.role,
                    channel: r.channel,
                    address: email
                        .and_then(|e| e.accepted.as_ref())
                        .map(|a| a.address.clone()),
                    accepted_at: email.and_then(|e| e.accepted.as_ref()).map(|a| a.at),
                    delivered_at: confirmation
                        .filter(|c| c.kind == ReportKind::Delivered)
                        .map(|c| c.at),
                    relayed_at: confirmation
                        .filter(|c| c.kind == ReportKind::Relayed)
                        .map(|c| c.at),
                    read_at: email.and_then(|e| e.read_notice()).map(|n| n.at),
                    open_by: email
                        .filter(|e| e.holds() && e.read_notice().is_none())
                        .and_then(|e| e.accepted.as_ref())
                        .map(|a| self.working_hours.add(a.at, self.read_within)),
                    rejected: email.and_then(|e| e.rejected.clone()),
                    batch: r.letter.as_ref().map(|l| l.batch.clone()),
                    printed_at: r.letter.as_ref().and_then(|l| l.printed_at),
                }
            })
            .collect()
    }

    pub(super) fn desk_jobs(
        &self,
        person: &Person,
        search: &str,
        filter: DeskFilter,
        limit: usize,
    ) -> Result<Vec<DeskRow>, ServiceError> {
        let needle = search.trim().to_lowercase();
        let limit = limit.clamp(1, 500);
        let mut rows = Vec::new();
        // The newest jobs, read until `limit` rows match (at most a few thousand looked at).
        for job in self.store.list(&[], 5_000)? {
            let open: Vec<_> = job.open_alerts().iter().map(|m| m.kind).collect();
            let keep = match filter {
                DeskFilter::All => true,
                DeskFilter::AwaitingProof => job.recipients.iter().any(|r| {
                    r.email.as_ref().is_some_and(|e| {
                        e.holds() && (e.confirmation().is_none() || e.read_notice().is_none())
                    })
                }),
                DeskFilter::AlertOpen => !open.is_empty(),
                DeskFilter::ByPost => job.recipients.iter().any(|r| r.letter.is_some()),
            };
            if !keep {
                continue;
            }
            let case = self.case_of(&job.id);
            if !needle.is_empty() {
                let names = job
                    .recipients
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            r.kommunkod,
                            self.name_of(r.kommunkod).to_lowercase()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let hit = job.id.as_str().contains(&needle)
                    || case.as_deref().is_some_and(|c| c.contains(&needle))
                    || names.contains(&needle);
                if !hit {
                    continue;
                }
            }
            rows.push(DeskRow {
                sent_by: self.store.sender(&job.id)?,
                job_id: job.id.clone(),
                case,
                received_at: job.received_at,
                state: job.state,
                chains: self.chains(&job),
                open_alerts: open,
            });
            if rows.len() >= limit {
                break;
            }
        }
        let shown: Vec<JobId> = rows.iter().map(|r| r.job_id.clone()).collect();
        self.store.audit_list_view(
            &person.on_desk(),
            &format!("the job list ({})", filter.as_str()),
            !needle.is_empty(),
            &shown,
        )?;
        Ok(rows)
    }

    pub(super) fn desk_job(
        &self,
        person: &Person,
        id: JobId,
        view: DeskView,
    ) -> Result<Box<DeskJob>, ServiceError> {
        let Some(job) = self.store.get(&id)? else {
            return Err(self.unknown(id));
        };
        let events = self.store.events(&id)?;
        let what = match view {
            DeskView::Page => "the job's page",
            DeskView::Receipt => "the receipt for the case file",
        };
        self.store.audit_view(&id, &person.on_desk(), what)?;
        let working = events
            .iter()
            .map(|e| self.working_hours.between(job.received_at, e.at).as_secs())
            .collect();
        let open_alerts = job
            .open_alerts()
            .into_iter()
            .map(|mark| self.open_alert(&id, mark, job.to))
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(Box::new(DeskJob {
            sent_by: self.store.sender(&id)?,
            case: self.case_of(&id),
            chains: self.chains(&job),
            audit_position: self.store.audit_position(&id)?,
            open_alerts,
            working_seconds: working,
            events,
            job,
        }))
    }

    /// One open alert with whom to call: the municipality's phone and contact persons, and
    /// when it was raised (from its file, while retention keeps it).
    pub(super) fn open_alert(
        &self,
        job_id: &JobId,
        mark: crate::store::state::AlertMark,
        assigned: Option<Kommunkod>,
    ) -> Result<OpenAlert, ServiceError> {
        let code = mark.kommunkod.or(assigned);
        let registered = match code {
            Some(code) => Some(self.store.registered(code)?),
            None => None,
        };
        let file = self
            .spool
            .alerts()
            .join(crate::ops::alert::Alerter::file_name(job_id, mark));
        let since = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<crate::ops::alert::Alert>(&bytes).ok())
            .map(|a| a.at);
        let sent = self.store.get(job_id)?.and_then(|job| {
            job.recipients
                .iter()
                .filter(|r| code.is_none_or(|c| r.kommunkod == c))
                .find_map(|r| r.email.as_ref()?.accepted.as_ref())
                .map(|a| (a.address.clone(), a.at))
        });
        Ok(OpenAlert {
            recipient: mark.kommunkod,
            case: None,
            sent,
            job_id: job_id.clone(),
            kind: mark.kind,
            team: mark.kind.team(),
            kommunkod: code,
            municipality: code.map(|c| self.name_of(c)),
            phone: registered.as_ref().and_then(|r| r.phone.clone()),
            contacts: registered.map(|r| r.contacts).unwrap_or_default(),
            since,
        })
    }
}
