use super::*;
use jiff::SignedDuration;

fn record(state: JobState) -> JobRecord {
    JobRecord::for_tests(state)
}

/// A store with one queued job, flushed: the state both sides of a crash agree on.
fn store_with(dir: &Path, job: &JobRecord) -> Store {
    let store = Store::open(dir).expect("open");
    store
        .enqueue(job, &[(JobState::Queued, note("queued"))])
        .expect("enqueue");
    store
}

/// A store whose queued job has been moved to `sending` by a journaled step only.
fn store_with_sending(dir: &Path) -> (Store, JobRecord) {
    let job = record(JobState::Queued);
    let store = store_with(dir, &job);
    store
        .transition_journaled(&job.id, &[JobState::Queued], &note("sending"), |r| {
            r.state = JobState::Sending;
            r.attempts += 1;
        })
        .expect("sending");
    (store, job)
}

/// The details of the job's events, oldest first.
fn details(store: &Store, id: &JobId) -> Vec<String> {
    store
        .events(id)
        .expect("events")
        .into_iter()
        .map(|e| e.detail)
        .collect()
}

fn journal_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(crate::store::journal::DIR))
        .expect("journal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn journaled_transitions_lost_from_sled_are_replayed_in_order_at_the_next_open() {
    // What a crash leaves: sled without the changes, the journal with them. Made with
    // two stores that agree up to the journaled changes; the second gets the first's
    // journal, as if its process had died before flushing.
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let job = record(JobState::Queued);
    let first = store_with(a.path(), &job);
    drop(store_with(b.path(), &job));
    first
        .transition_journaled(&job.id, &[JobState::Queued], &note("sending"), |r| {
            r.state = JobState::Sending;
            r.attempts += 1;
        })
        .expect("sending");
    let delivered = first
        .transition_journaled(&job.id, &[JobState::Sending], &note("accepted"), |r| {
            r.state = JobState::Delivered;
            r.next_attempt = None;
        })
        .expect("delivered");
    let written = journal_files(a.path());
    assert_eq!(written.len(), 1, "both changes in one file until a flush");
    let target = b.path().join(crate::store::journal::DIR);
    for file in &written {
        std::fs::copy(file, target.join(file.file_name().expect("name"))).expect("copy");
    }
    // A torn line after them, as a kill inside write(2) could leave.
    let mut torn = std::fs::read(&written[0]).expect("read");
    torn.extend_from_slice(b"{\"v\":1,\"detail\":\"acc");
    std::fs::write(target.join(written[0].file_name().expect("name")), torn).expect("w");

    let replayed = Store::open(b.path()).expect("reopen replays");
    let got = replayed.get(&job.id).expect("get").expect("job");
    assert_eq!(got.state, JobState::Delivered);
    assert_eq!(got.attempts, 1);
    assert_eq!(got.events, delivered.events);
    assert!(replayed.due(Timestamp::now(), 10).expect("due").is_empty());
    assert_eq!(
        details(&replayed, &job.id),
        ["queued", "sending", "accepted"]
    );
    assert!(matches!(
        replayed.verify_audit().expect("verify"),
        audit::Verdict::Ok { .. }
    ));
    assert!(
        journal_files(b.path()).is_empty(),
        "replayed files are removed"
    );
    drop(replayed);

    // The first store's own files replay onto a sled that has them: nothing is applied twice.
    drop(first);
    let again = Store::open(a.path()).expect("reopen");
    assert_eq!(
        again.events(&job.id).expect("events").len(),
        3,
        "an entry already in sled is skipped"
    );
}

/// What sled itself holds for the job, bypassing the journaled steps.
fn in_sled(store: &Store, id: &JobId) -> JobRecord {
    decode(
        &store
            .jobs
            .get(id.as_str().as_bytes())
            .expect("get")
            .expect("job"),
    )
    .expect("decode")
}

#[test]
fn journaled_steps_are_read_at_once_and_reach_sled_together_at_the_next_flush() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, job) = store_with_sending(dir.path());
    store
        .transition_journaled(&job.id, &[JobState::Sending], &note("accepted"), |r| {
            r.state = JobState::Delivered;
            r.next_attempt = None;
        })
        .expect("delivered");

    // Every read sees them; sled does not have them yet.
    let seen = store.get(&job.id).expect("get").expect("job");
    assert_eq!(
        (seen.state, seen.attempts, seen.events),
        (JobState::Delivered, 1, 3)
    );
    assert_eq!(details(&store, &job.id), ["queued", "sending", "accepted"]);
    assert_eq!(
        store.list(&[JobState::Delivered], 10).expect("list").len(),
        1
    );
    assert!(
        store.due(Timestamp::now(), 10).expect("due").is_empty(),
        "a job finished by a journaled step is not due, whatever sled's index says"
    );
    assert_eq!(in_sled(&store, &job.id).state, JobState::Queued);
    // A step that does not follow the journaled state is refused like any other.
    assert!(matches!(
        store.transition_journaled(&job.id, &[JobState::Sending], &note("again"), |_| {}),
        Err(StoreError::Conflict {
            actual: JobState::Delivered,
            ..
        })
    ));

    store.flush().expect("flush");
    let stored = in_sled(&store, &job.id);
    assert_eq!((stored.state, stored.events), (JobState::Delivered, 3));
    assert_eq!(store.events(&job.id).expect("events").len(), 3);
    assert!(store.lock_unapplied().is_empty());
    assert!(matches!(
        store.verify_audit().expect("verify"),
        audit::Verdict::Ok { .. }
    ));
}

#[test]
fn a_flushed_transition_writes_the_journaled_steps_before_it_and_follows_them() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, job) = store_with_sending(dir.path());
    // The operator's view of the job is the journaled one.
    assert!(matches!(
        store.transition(&job.id, &[JobState::Queued], &note("cancel"), &[], |_| {}),
        Err(StoreError::Conflict {
            actual: JobState::Sending,
            ..
        })
    ));
    store
        .transition(&job.id, &[JobState::Sending], &note("deferred"), &[], |r| {
            r.state = JobState::Deferred;
        })
        .expect("deferred");
    let stored = in_sled(&store, &job.id);
    assert_eq!((stored.state, stored.events), (JobState::Deferred, 3));
    assert_eq!(details(&store, &job.id), ["queued", "sending", "deferred"]);
    assert!(store.lock_unapplied().is_empty(), "nothing left to apply");
    store.flush().expect("a later flush applies nothing twice");
    assert_eq!(store.events(&job.id).expect("events").len(), 3);
}

#[test]
fn a_job_deferred_by_a_journaled_step_is_due_at_its_new_time_not_its_old_one() {
    let dir = tempfile::tempdir().expect("dir");
    let job = record(JobState::Queued);
    let store = store_with(dir.path(), &job);
    let now = Timestamp::now();
    let later = now + SignedDuration::from_mins(10);
    store
        .transition_journaled(&job.id, &[JobState::Queued], &note("deferred"), |r| {
            r.state = JobState::Deferred;
            r.next_attempt = Some(later);
        })
        .expect("deferred");
    assert!(store.due(now, 10).expect("due").is_empty());
    let due = store
        .due(later + SignedDuration::from_secs(1), 10)
        .expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].state, JobState::Deferred);
    store.flush().expect("flush");
    assert!(
        store.due(now, 10).expect("due").is_empty(),
        "sled's index moved"
    );
    assert_eq!(store.due(later, 10).expect("due").len(), 1);
}

#[test]
fn a_flush_retires_the_journal_file_it_covers() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = store_with_sending(dir.path());
    assert_eq!(journal_files(dir.path()).len(), 1);
    assert!(
        store.flush_journaled().expect("flush"),
        "entries were waiting"
    );
    assert!(journal_files(dir.path()).is_empty());
    assert!(!store.flush_journaled().expect("flush"), "nothing to do");
}

#[test]
fn enqueue_then_due_then_transition_to_final_leaves_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let job = record(JobState::Queued);
    store
        .enqueue(&job, &[(JobState::Queued, note("received"))])
        .expect("enqueue");
    assert!(matches!(
        store.enqueue(&job, &[(JobState::Queued, note("again"))]),
        Err(StoreError::AlreadyExists(_))
    ));
    let due = store.due(Timestamp::now(), 10).expect("due");
    assert_eq!(due.len(), 1);

    let done = store
        .transition(&job.id, &[JobState::Queued], &note("printed"), &[], |r| {
            r.state = JobState::PrintQueued;
            r.next_attempt = None;
        })
        .expect("transition");
    assert_eq!(done.state, JobState::PrintQueued);
    assert!(store.due(Timestamp::now(), 10).expect("due").is_empty());
    assert_eq!(
        store.pending().expect("pending").len(),
        1,
        "receipt still owed"
    );
    store.mark_receipt_written(&job.id).expect("mark");
    assert!(store.pending().expect("pending").is_empty());

    let events = store.events(&job.id).expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].state, JobState::PrintQueued);
}

#[test]
fn a_group_enqueued_in_one_transaction_is_all_due_with_an_unbroken_audit_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let group: Vec<_> = (0..3)
        .map(|_| {
            (
                record(JobState::Queued),
                vec![
                    (JobState::Received, note("claimed")),
                    (JobState::Queued, note("routed")),
                ],
            )
        })
        .collect();
    store.enqueue_many(&group, false).expect("group");
    store.flush().expect("flush");
    let mut due: Vec<JobId> = store
        .due(Timestamp::now(), 10)
        .expect("due")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut ids: Vec<JobId> = group.iter().map(|(r, _)| r.id.clone()).collect();
    due.sort();
    ids.sort();
    assert_eq!(due, ids);
    assert_eq!(store.events(&ids[0]).expect("events").len(), 2);
    assert!(matches!(
        store.verify_audit().expect("verify"),
        audit::Verdict::Ok { entries: 6 }
    ));
    // One id already known: the whole group is refused and nothing of it is written.
    let again = vec![group[0].clone(), (record(JobState::Queued), vec![])];
    assert!(matches!(
        store.enqueue_many(&again, false),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(store.get(&again[1].0.id).expect("get").is_none());
}

#[test]
fn receipts_marked_as_a_group_leave_nothing_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let jobs: Vec<JobRecord> = (0..2).map(|_| record(JobState::PrintQueued)).collect();
    for job in &jobs {
        let mut job = job.clone();
        job.next_attempt = None;
        store
            .enqueue(&job, &[(JobState::PrintQueued, note("printed"))])
            .expect("enqueue");
    }
    assert_eq!(store.pending().expect("pending").len(), 2);
    let mut ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
    ids.push(JobId::generate()); // gone meanwhile: skipped
    store.mark_receipts_written(&ids).expect("mark");
    assert!(store.pending().expect("pending").is_empty());
}

#[test]
fn transition_from_unexpected_state_is_a_conflict_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let job = record(JobState::Queued);
    store
        .enqueue(&job, &[(JobState::Queued, note("received"))])
        .expect("enqueue");
    let err = store
        .transition(&job.id, &[JobState::Sending], &note("x"), &[], |r| {
            r.state = JobState::Delivered
        })
        .expect_err("conflict");
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert_eq!(store.events(&job.id).expect("events").len(), 1);
}

#[test]
fn due_excludes_future_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let mut job = record(JobState::Deferred);
    job.next_attempt = Some(Timestamp::now() + SignedDuration::from_secs(3600));
    store
        .enqueue(&job, &[(JobState::Deferred, note("deferred"))])
        .expect("enqueue");
    assert!(store.due(Timestamp::now(), 10).expect("due").is_empty());
}

#[test]
fn data_survives_reopen_and_list_filters_by_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = record(JobState::Queued);
    let b = record(JobState::Quarantined);
    {
        let store = Store::open(dir.path()).expect("open");
        store
            .enqueue(&a, &[(JobState::Queued, note("received"))])
            .expect("enqueue");
        store
            .enqueue(&b, &[(JobState::Quarantined, note("quarantined"))])
            .expect("enqueue");
    }
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.list(&[], 10).expect("list").len(), 2);
    let q = store.list(&[JobState::Quarantined], 10).expect("list");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id, b.id);
}

#[test]
fn registry_changes_keep_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let code: Kommunkod = "2480".parse().expect("code");
    let first = Registered {
        postal_address: Some(
            crate::registry::PostalAddress::parse("Box 1\n901 84 Umeå").expect("addr"),
        ),
        ..Registered::default()
    };
    // Read (and kept in memory) before each change: a read after it sees the change.
    assert_eq!(store.registered(code).expect("read"), Registered::default());
    store
        .register(code, &first, "anna", &crate::registry::RegistryAction::Set)
        .expect("register");
    assert_eq!(store.registered(code).expect("read"), first);
    store
        .register(
            code,
            &Registered::default(),
            "bo",
            &crate::registry::RegistryAction::Set,
        )
        .expect("register");
    assert_eq!(store.registered(code).expect("read"), Registered::default());
    let history = store.registry_history(code).expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].before, first);
    assert_eq!(history[1].operator, "bo");
}

#[test]
fn a_new_store_is_created_in_this_format_and_not_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.opened(), Opening::Created);
        assert_eq!(store.format().expect("format"), FORMAT_VERSION);
    }
    let mut reopened = Store::open(dir.path());
    for _ in 0..100 {
        match &reopened {
            Err(e) if e.is_locked() => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                reopened = Store::open(dir.path());
            }
            _ => break,
        }
    }
    assert_eq!(reopened.expect("reopen").opened(), Opening::Current);
}

#[test]
fn a_store_a_newer_kurir_migrated_is_refused_not_misread() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.format().expect("format"), FORMAT_VERSION);
        store
            .meta
            .insert(b"format", &(FORMAT_VERSION + 1).to_be_bytes())
            .expect("insert");
        store.flush().expect("flush");
    }
    // sled lets go of its lock when its last background thread ends: wait for that.
    let mut opened = Store::open(dir.path());
    for _ in 0..100 {
        match &opened {
            Err(e) if e.is_locked() => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                opened = Store::open(dir.path());
            }
            _ => break,
        }
    }
    match opened {
        Err(StoreError::NewerStore { found }) => assert_eq!(found, FORMAT_VERSION + 1),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a newer store was opened"),
    }
}

#[test]
fn every_new_event_of_a_finished_job_owes_its_receipt_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = record(JobState::Queued);
    let store = store_with(dir.path(), &job);
    store
        .transition(&job.id, &[JobState::Queued], &note("letters"), &[], |r| {
            r.state = JobState::PrintQueued;
            r.next_attempt = None;
        })
        .expect("finished");
    assert_eq!(store.owed_receipts(10).expect("owed"), vec![job.id.clone()]);
    store
        .mark_receipts_written(std::slice::from_ref(&job.id))
        .expect("mark");
    assert!(store.owed_receipts(10).expect("owed").is_empty());
    store
        .transition(
            &job.id,
            &[JobState::PrintQueued],
            &note("a report"),
            &[],
            |_| {},
        )
        .expect("report");
    assert_eq!(
        store.owed_receipts(10).expect("owed"),
        vec![job.id.clone()],
        "the receipt lists every event: a new one owes it again"
    );
}

/// An event for a test: free words.
fn note(text: &str) -> crate::store::event::EventKind {
    crate::store::event::EventKind::Note { text: text.into() }
}
