//! Root's commands never work in the daemon's folders as root. What `sudo kurir …` must do in
//! the spool or the store — write a job, store a delivery report, answer from the store while
//! no daemon runs, restore a backup — is done by a process of the folders' owner (the daemon's
//! user): `kurir as-owner`, started through `setpriv` with that user's ids and groups, which
//! reads its one task from standard input. Root reads what only root may read (the PDFs it
//! was given, the backup's key) and hands it over; it follows no path in a folder another
//! user controls, and no process changes its own user while it runs (in a threaded process
//! that is not safe).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::fsutil::Owner;
use crate::job::{DocumentKind, Kommunkod};
use crate::registry::Seed;
use crate::service::protocol;
use crate::service::{Command, Principal};

/// The hidden command's name.
pub const COMMAND: &str = "as-owner";

/// What the owner's process is asked to do.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "kebab-case")]
pub enum Task {
    /// Answer one operator's request from the store (no daemon runs); the answer goes to
    /// standard output as JSON.
    Answer {
        /// The operator.
        principal: Principal,
        /// The request.
        command: Command,
    },
    /// Write a job, read and checked by root, into the spool; its id to standard output.
    Submit {
        /// Assigned municipality.
        to: Kommunkod,
        /// Case number.
        case: String,
        /// Copy recipients.
        copy_to: Vec<Kommunkod>,
        /// The documents, in order.
        documents: Vec<Document>,
        /// The case system's identifier of the submission.
        submission_key: Option<String>,
    },
    /// Store one message the MTA piped to root; the exit status is the pipe's.
    Inbound {
        /// The envelope recipient, if the MTA gave it.
        recipient: Option<String>,
        /// The message, as read (at most `[proof] max_inbound_bytes` and one more byte).
        #[serde(with = "kurir_protocol::call::base64_bytes")]
        message: Vec<u8>,
    },
    /// Restore a backup into the state directory, with the key root read.
    Restore {
        /// The backup.
        src: PathBuf,
        /// Replace a stopped store.
        force: bool,
        /// The integrity key that opens it, when root was given one (`--key`); else the
        /// store's own, which the owner's process reads.
        key: Option<Vec<u8>>,
        /// Who restores (recorded).
        operator: String,
    },
}

/// A document handed to the owner's process.
#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    /// Which.
    pub kind: DocumentKind,
    /// The file, as root read and checked it.
    #[serde(with = "kurir_protocol::call::base64_bytes")]
    pub bytes: Vec<u8>,
}

/// Runs `task` in a process of `owner`, with this command's settings. `capture`: its standard
/// output is returned (an answer); otherwise it is this command's own. Returns its exit
/// status and what it wrote.
pub fn run(
    owner: Owner,
    settings: &Settings,
    task: &Task,
    capture: bool,
) -> anyhow::Result<(ExitCode, Vec<u8>)> {
    let program = std::env::current_exe().context("finding this program")?;
    let file = match &settings.file {
        Some(file) => std::path::absolute(file).unwrap_or_else(|_| file.clone()),
        None => PathBuf::from(crate::config::NO_FILE),
    };
    // The owner's own group and supplementary groups (the spool's submit group, say), as a
    // login would give them; a user without an entry in the user database gets the folder's
    // group and none besides.
    let user = nix::unistd::User::from_uid(owner.uid().into())
        .ok()
        .flatten();
    let (gid, groups) = match &user {
        Some(user) => (user.gid.as_raw(), "--init-groups"),
        None => (owner.gid(), "--clear-groups"),
    };
    let absolute = |path: &std::path::Path| std::path::absolute(path).unwrap_or(path.to_path_buf());
    // A session of its own (setsid): the owner's process gets no hold on root's terminal.
    let mut child = std::process::Command::new("/usr/bin/setsid")
        .arg("--wait")
        .arg("/usr/bin/setpriv")
        .arg(format!("--reuid={}", owner.uid()))
        .arg(format!("--regid={gid}"))
        .arg(groups)
        .arg("--")
        .arg(program)
        .arg("--config")
        .arg(file)
        .arg(COMMAND)
        // The folders as root's command line resolved them, whatever its working directory.
        .env("KURIR_SPOOL__DIR", absolute(&settings.spool.dir))
        .env("KURIR_STORE__DIR", absolute(&settings.store.dir))
        .current_dir("/")
        // Not a delegated caller: root asks, for the person it names.
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .env_remove("SUDO_USER")
        .env_remove("SUDO_COMMAND")
        .stdin(Stdio::piped())
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .context("starting a process of the store's owner (setsid and setpriv, util-linux)")?;
    let request = serde_json::to_vec(task).context("encoding the task")?;
    // A process that ends before reading it all (it could not read its settings, say) is
    // still waited for: its status and its words are what the caller needs.
    let handed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&request))
        .transpose();
    let output = child
        .wait_with_output()
        .context("the store's owner's process")?;
    let code = output
        .status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1);
    if let Err(e) = handed {
        if output.status.success() {
            return Err(e).context("handing the task over");
        }
    }
    Ok((ExitCode::from(code), output.stdout))
}

/// `kurir as-owner`: does the task on standard input, as this process's user. Refused to root
/// and to a caller sudo ran for another user: kurir starts it, as the folders' owner.
pub fn serve(settings: &Settings, seed: std::sync::Arc<Seed>) -> anyhow::Result<ExitCode> {
    if crate::cli::delegated_by().is_some() || crate::fsutil::own_euid() == 0 {
        bail!("`kurir {COMMAND}` is started by kurir itself, as the owner of the spool and store");
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the task")?;
    let task: Task = serde_json::from_str(&text).context("reading the task")?;
    match task {
        Task::Answer { principal, command } => {
            // The operator socket takes operators only; so does this.
            if !matches!(principal, Principal::Operator(_)) {
                bail!("`kurir {COMMAND}` answers operators only");
            }
            let answer = match crate::cli::control::answer_here(settings, seed, principal, command)?
            {
                Ok(value) => protocol::Answer::Ok(value),
                Err(refused) => protocol::Answer::Err(refused),
            };
            serde_json::to_writer(std::io::stdout().lock(), &answer)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Submit {
            to,
            case,
            copy_to,
            documents,
            submission_key,
        } => {
            let job = crate::intake::submit::JobContents {
                to,
                case: case.parse().context("the case number")?,
                copy_to,
                documents: documents.into_iter().map(|d| (d.kind, d.bytes)).collect(),
                submission_key,
            };
            let spool = crate::spool::Spool::new(&settings.spool.dir);
            let id = crate::intake::submit::write(&spool, &job)?;
            crate::cli::out::say!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Task::Inbound { recipient, message } => Ok(crate::cli::inbound::store(
            settings,
            recipient.as_deref(),
            &message[..],
        )),
        Task::Restore {
            src,
            force,
            key,
            operator,
        } => {
            let key = match key {
                Some(bytes) => crate::store::seal::IntegrityKey::from_bytes(&bytes),
                None => crate::cli::backup::integrity_key(&settings.store.dir, None)?,
            };
            crate::cli::backup::restore_here(settings, src, force, key, &operator)
        }
    }
}

/// The task of writing `job`, as root hands it over.
pub fn submit_task(job: crate::intake::submit::JobContents) -> Task {
    Task::Submit {
        to: job.to,
        case: job.case.expose().to_string(),
        copy_to: job.copy_to,
        documents: job
            .documents
            .into_iter()
            .map(|(kind, bytes)| Document { kind, bytes })
            .collect(),
        submission_key: job.submission_key,
    }
}
