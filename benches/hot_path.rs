//! Micro-benchmarks of the per-job hot path: PDF validation, MIME composition, S/MIME
//! sign+encrypt, print-letter rendering, and a store transition with its flush, or journaled
//! in a group that one flush writes.
//! `cargo bench --bench hot_path`

mod common;
#[path = "../tests/common/pki.rs"]
mod pki;

use criterion::{criterion_group, criterion_main, Criterion};
use kurir::job::{DocumentKind, JobId};
use kurir::store::state::JobState;

fn hot_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = pki::Ca::new(&dir.path().join("pki"), "bench CA");
    let agency = ca.issue("agency", pki::Usage::Email("anvisning@bench.example"));
    let muni = ca.issue(
        "kommun",
        pki::Usage::Email("registrator@kommun.bench.example"),
    );
    let signer =
        kurir::deliver::mail::smime::Signer::load(&agency.cert, &agency.key).expect("signer");
    let cert = kurir::registry::RegisteredCert::accept(
        &std::fs::read_to_string(&muni.cert).expect("pem"),
        kurir::registry::CertPolicy {
            address: Some("registrator@kommun.bench.example"),
            ..Default::default()
        },
    )
    .expect("cert");
    let pdf = common::synthetic_pdf("ANVISNINGSBESLUT", 40_000);
    let limits = kurir::pdf::PdfLimits {
        max_bytes: 25_000_000,
        max_pages: 500,
        max_decompressed_bytes: 200_000_000,
    };
    let sender = kurir::config::SenderSettings::default();
    let window = kurir::config::WindowSettings::default();
    let job_id = JobId::generate();

    c.bench_function("pdf_validate_40k", |b| {
        b.iter(|| kurir::pdf::validate(&pdf, &limits).expect("valid"))
    });

    let mail = common::decision_mail(&job_id, &pdf, &pdf, &sender);
    c.bench_function("mime_sign_only_2x40k", |b| {
        b.iter(|| kurir::deliver::mail::compose::decision(&mail, &signer, None).expect("mail"))
    });
    c.bench_function("mime_sign_encrypt_2x40k", |b| {
        b.iter(|| {
            kurir::deliver::mail::compose::decision(&mail, &signer, Some(&cert)).expect("mail")
        })
    });
    c.bench_function("smime_sign_detached_100k", |b| {
        let data = vec![b'a'; 100_000];
        b.iter(|| signer.sign_detached(&data).expect("sign"))
    });

    let cover = kurir::deliver::print::letter::CoverLetter {
        sender: &sender,
        window: &window,
        to: kurir::deliver::print::letter::Addressee {
            name: "Umeå kommun".into(),
            lines: vec!["Skolgatan 31A".into(), "901 84 Umeå".into()],
        },
        reference: job_id.as_str(),
        date: "2026-11-22".into(),
        copy_of: None,
        enclosures: vec![
            (DocumentKind::Anvisningsbeslut, 2),
            (DocumentKind::GodMan, 2),
        ],
    };
    c.bench_function("print_letter_2x40k", |b| {
        b.iter(|| {
            kurir::deliver::print::letter::build(&cover, &[&pdf, &pdf], &limits).expect("letter")
        })
    });

    let store = kurir::store::Store::open(&dir.path().join("state")).expect("store");
    let now = jiff::Timestamp::now();
    let mut record = kurir::store::state::JobRecord::received(job_id.clone(), "bench", now);
    record.state = JobState::Queued;
    record.to = "2480".parse().ok();
    record.next_attempt = Some(now);
    store
        .enqueue(&record, &[(JobState::Queued, bench_event())])
        .expect("enqueue");
    c.bench_function("store_transition_with_flush", |b| {
        b.iter(|| {
            store
                .transition(&job_id, &[JobState::Queued], &bench_event(), &[], |r| {
                    r.attempts += 1
                })
                .expect("transition")
        })
    });
    // What the queue's steps cost: each journaled (one write(2)) while the next message
    // waits, then written into sled together by one flush, as a receipt group does.
    c.bench_function("store_32_transitions_journaled_then_one_flush", |b| {
        b.iter(|| {
            for _ in 0..32 {
                store
                    .transition_journaled(&job_id, &[JobState::Queued], &bench_event(), |r| {
                        r.attempts += 1
                    })
                    .expect("transition");
            }
            store.flush().expect("flush")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = hot_path
}
criterion_main!(benches);

/// The event the store benchmarks record.
fn bench_event() -> kurir::store::event::EventKind {
    kurir::store::event::EventKind::Note {
        text: "bench".into(),
    }
}
