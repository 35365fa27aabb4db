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
