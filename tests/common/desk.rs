//! The dispatch desk's test rig: the mail world (the agency's Postfix relay with DSN, the
//! municipalities' Postfix; 2480 proven at umea.test), the daemon, `kurir portal` as its own
//! user, a caseworker with desk access (handläggare) and a municipality person with only
//! Umeå's registration.
#![allow(dead_code)]

use super::mailworld::{self, MailWorld};
use super::pki::{Identity, Usage};
use super::portal::{self, Served, PERSON_CA};
use super::Env;

/// The caseworker's HSA-id and name.
pub const STAFF_HSA: &str = "SE2021000001-hand1";
pub const STAFF_NAME: &str = "Hanna Handläggare";

pub struct DeskRig {
    /// The portal (stopped first).
    pub served: Served,
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
    let served = portal::launch(&env, prepared);
    DeskRig {
        served,
        world,
        env,
        staff,
    }
}
