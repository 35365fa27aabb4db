//! The dispatch desk's test rig: the mail world (the agency's Postfix relay with DSN, the
//! municipalities' Postfix; 2480 proven at umea.test), the daemon, `kurir-desk` and
//! `kurir-portal` each as its own user (as the package runs them), a caseworker with desk access
//! (handläggare) and a municipality person with only Umeå's registration.
#![allow(dead_code)]

use super::mailworld::{self, MailWorld};
use super::pki::{Identity, Usage};
use super::portal::{self, Served, PERSON_CA};
use super::Env;

/// The caseworker's HSA-id and name.
pub const STAFF_HSA: &str = "SE2021000001-hand1";
pub const STAFF_NAME: &str = "Hanna Handläggare";

pub struct DeskRig {
    /// The desk (stopped first).
    pub served: Served,
    /// The municipality portal, beside it.
    pub portal: Served,
    /// The mail servers.
    pub world: MailWorld,
    /// The daemon's environment.
    pub env: Env,
    /// The caseworker's card.
    pub staff: Identity,
}

/// Everything running, with `adjust` applied to the environment before the daemon starts.
pub fn desk_rig(adjust: impl FnOnce(&mut Env)) -> DeskRig {
    let mut env = Env::new();
    let world = mailworld::start(&mut env);
    let prepared = portal::prepare(&mut env, &world.ca);
    let desk = portal::prepare_desk(&mut env, &world.ca, &prepared);
    let staff = prepared
        .ca()
        .issue("staff", Usage::Person(STAFF_HSA, STAFF_NAME));
    adjust(&mut env);
    env.start();
    portal::grant_municipality(&env, "2480", portal::HSA, portal::PERSON);
    env.ok(&[
        "staff",
        "grant",
        "--hsa-id",
        STAFF_HSA,
        "--name",
        STAFF_NAME,
        "--role",
        "handläggare",
        "--issuer",
        &format!("CN={PERSON_CA}"),
        "--operator",
        "drift-olle",
    ]);
    let portal = portal::launch(&env, prepared);
    let served = portal::launch(&env, desk);
    DeskRig {
        served,
        portal,
        world,
        env,
        staff,
    }
}

/// The proof deadlines of every delivered decision as they stand a week on, raised against the
/// daemon's store (it is stopped meanwhile: working time cannot be waited for in a test).
/// Returns how many alerts were raised.
pub fn a_week_passes(rig: &mut DeskRig) -> usize {
    rig.env.stop();
    let dir = rig.env.path();
    let mut settings = kurir::config::Settings::default();
    settings.spool.dir = dir.join("spool");
    settings.store.dir = dir.join("state");
    settings.proof.return_path = mailworld::REPORTS.into();
    // The daemon's own wiring, in this process, a week on.
    let week = jiff::SignedDuration::from_hours(24 * 7);
    let clock = std::sync::Arc::new(kurir::clock::ManualClock::at(jiff::Timestamp::now() + week));
    let kurir = kurir::assemble::Kurir::build(&settings, clock).expect("kurir");
    let raised = kurir
        .inbound
        .check_deadlines(kurir.inbound.now())
        .expect("deadlines");
    // The alert writer's round, as the daemon's task would make it.
    kurir.alerter.raise_owed().expect("alert writer");
    drop(kurir);
    rig.env.start();
    raised
}
