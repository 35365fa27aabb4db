//! Registrations: proof of an address, refused values, the built-in list.

use super::*;

fn test_key() -> CodeKey {
    CodeKey::from_bytes(&[7; 32])
}

#[test]
fn builtin_list_has_all_290_with_corrected_names() {
    let seed = Seed::builtin().expect("seed parses");
    assert_eq!(seed.len(), 290);
    let name = |c: &str| {
        seed.get(c.parse().expect("code"))
            .expect("exists")
            .name
            .clone()
    };
    assert_eq!(name("2480"), "Umeå kommun");
    assert_eq!(name("0980"), "Region Gotland");
    assert_eq!(name("0880"), "Kalmar kommun");
    assert_eq!(name("2080"), "Falu kommun");
    assert_eq!(name("2514"), "Kalix kommun");
    assert_eq!(name("2513"), "Överkalix kommun");
    assert!(seed.get("9999".parse().expect("code")).is_none());
}

fn code() -> Kommunkod {
    "2480".parse().expect("code")
}

#[test]
fn a_new_address_waits_for_proof_and_the_proven_one_stays_in_use() {
    let now = Timestamp::now();
    let mut r = Registered::default();
    r.apply(
        &Changes {
            email: Some("registrator@umea.example".into()),
            secure: Some("yes".into()),
            ..Changes::default()
        },
        now,
    )
    .expect("valid");
    assert_eq!(r.active_address, None);
    assert_eq!(
        r.pending.as_ref().map(|p| p.address.as_str()),
        Some("registrator@umea.example")
    );

    let secret = "ABCD2345";
    r.set_code(
        code(),
        secret,
        now + jiff::SignedDuration::from_hours(1),
        &test_key(),
    )
    .expect("pending");
    assert!(matches!(
        r.confirm(
            code(),
            "WRONG123",
            now,
            &test_key(),
            ChangeContext::agency()
        ),
        Err(RegistryError::WrongCode(_))
    ));
    r.confirm(
        code(),
        "abcd2345",
        now,
        &test_key(),
        ChangeContext::agency(),
    )
    .expect("case-insensitive match");
    assert_eq!(
        r.active_address.as_deref(),
        Some("registrator@umea.example")
    );
    assert!(matches!(
        r.confirm(code(), secret, now, &test_key(), ChangeContext::agency()),
        Err(RegistryError::NothingPending(_))
    ));

    // A decision address replaces the official one only once proven.
    r.apply(
        &Changes {
            decision_email: Some("beslut@umea.example".into()),
            ..Changes::default()
        },
        now,
    )
    .expect("valid");
    assert_eq!(
        r.active_address.as_deref(),
        Some("registrator@umea.example")
    );
    assert_eq!(
        r.pending.as_ref().map(|p| p.address.as_str()),
        Some("beslut@umea.example")
    );
}

#[test]
fn an_expired_code_is_refused() {
    let now = Timestamp::now();
    let mut r = Registered::default();
    r.apply(
        &Changes {
            email: Some("a@b.example".into()),
            ..Changes::default()
        },
        now,
    )
    .expect("valid");
    r.set_code(
        code(),
        "ABCD2345",
        now - jiff::SignedDuration::from_secs(1),
        &test_key(),
    )
    .expect("pending");
    assert!(matches!(
        r.confirm(
            code(),
            "ABCD2345",
            now,
            &test_key(),
            ChangeContext::agency()
        ),
        Err(RegistryError::ExpiredCode(_))
    ));
}

#[test]
fn malformed_values_are_refused() {
    let now = Timestamp::now();
    let mut r = Registered::default();
    for changes in [
        Changes {
            email: Some("not an address".into()),
            ..Changes::default()
        },
        Changes {
            email: Some("a@b".into()),
            ..Changes::default()
        },
        Changes {
            phone: Some("call me".into()),
            ..Changes::default()
        },
        Changes {
            contacts: Some(vec!["Anna".into()]),
            ..Changes::default()
        },
        Changes {
            tls_pin: Some("abc".into()),
            ..Changes::default()
        },
        Changes {
            secure: Some("maybe".into()),
            ..Changes::default()
        },
        Changes {
            smime_cert_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            ..Changes::default()
        },
    ] {
        assert!(r.apply(&changes, now).is_err(), "{changes:?}");
    }
    let c = Contact::parse("Anna Berg, 090-16 10 00, anna.berg@umea.example").expect("valid");
    assert_eq!(c.phone, "090-16 10 00");
}

#[test]
fn codes_are_eight_unambiguous_characters() {
    let a = new_verification_code();
    assert_eq!(a.len(), 8);
    assert!(!a.contains('0') && !a.contains('O') && !a.contains('1') && !a.contains('I'));
    assert_ne!(a, new_verification_code());
}

#[test]
fn a_grant_admits_the_hsa_id_only_from_the_ca_it_names() {
    let grant = Grant {
        hsa_id: "SE2321000016-abc1".into(),
        name: None,
        issuer: Some("CN=SITHS e-id Person HSA-id 3 CA v1".into()),
    };
    let person = |issuer: &str| Person {
        hsa_id: "SE2321000016-abc1".into(),
        name: "Anna".into(),
        issuer: Some(issuer.into()),
    };
    assert!(grant.admits(&person("CN=SITHS e-id Person HSA-id 3 CA v1")));
    assert!(
        !grant.admits(&person("CN=Another CA")),
        "the same HSA-id from another CA"
    );
    let legacy = Grant {
        issuer: None,
        ..grant
    };
    assert!(
        legacy.admits(&person("CN=Another CA")),
        "0.1.0's grants name no CA"
    );
}

#[test]
fn an_address_outside_the_domains_is_used_only_after_approval_whoever_proves_it() {
    let now = Timestamp::now();
    let key = test_key();
    let mut r = Registered::default();
    r.apply(
        &Changes {
            email: Some("registrator@umea.example".into()),
            secure: Some("yes".into()),
            ..Changes::default()
        },
        now,
    )
    .expect("valid");
    assert_eq!(
        r.domains,
        ["umea.example"],
        "seeded from the agency's official address"
    );
    let person = ChangeContext {
        by_agency: false,
        smime_trust: None,
        who: "a person",
    };
    // A person on the portal and an operator at the command line alike: no single actor
    // moves decisions out of the municipality's mail system.
    for (address, in_use, context) in [
        ("beslut@umea.example", true, person),
        ("beslut@mail.umea.example", true, person),
        ("beslut@evil.example", false, person),
        ("beslut@evil.example", false, ChangeContext::agency()),
    ] {
        let mut r = r.clone();
        r.apply_with(
            &Changes {
                decision_email: Some(address.into()),
                ..Changes::default()
            },
            now,
            context,
        )
        .expect("valid");
        r.set_code(
            code(),
            "ABCD2345",
            now + jiff::SignedDuration::from_hours(1),
            &key,
        )
        .expect("pending");
        let proven = r
            .confirm(code(), "ABCD2345", now, &key, context)
            .expect("proven");
        if in_use {
            assert_eq!(proven, Proven::InUse(address.into()));
            assert_eq!(r.active_address.as_deref(), Some(address));
        } else {
            assert_eq!(proven, Proven::AwaitsApproval(address.into()));
            assert_eq!(r.active_address, None);
            r.approve(code()).expect("approved");
            assert_eq!(r.active_address.as_deref(), Some(address));
        }
    }
    // A person's postal address waits; removing it is refused.
    let mut r2 = r.clone();
    r2.apply_with(
        &Changes {
            postal_address: Some("Box 1\n901 84 Umeå".into()),
            ..Changes::default()
        },
        now,
        person,
    )
    .expect("valid");
    assert!(r2.postal_address.is_none() && r2.awaiting_approval.is_some());
    assert!(r2
        .apply_with(
            &Changes {
                postal_address: Some(String::new()),
                ..Changes::default()
            },
            now,
            person,
        )
        .is_err());
}
