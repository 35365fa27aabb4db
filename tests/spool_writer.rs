//! The case system writes jobs as a member of `[spool] submit_group`, as Postfix's postdrop
//! writes the maildrop: it drops jobs, and reaches nothing else of kurir — not the operator
//! socket, not the store or its keys, not the receipts. The real daemon and `kurir submit` run
//! as another user (`setpriv`), as the case system's account would.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::Env;

/// `kurir` as the case system's account: nobody, in group nogroup only.
fn as_writer(env: &Env, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_kurir"))
        .args(args)
        .current_dir(env.path())
        .env("KURIR_CONFIG", "none")
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn a_member_of_the_submit_group_drops_jobs_and_reaches_nothing_else() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__SUBMIT_GROUP", "nogroup");
    // The writer passes through the test's folder to the spool, as through /var/spool.
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    env.start();
    let pdf = env.path().join("beslut.pdf");
    std::fs::write(&pdf, common::pdf::beslut("WRITER")).expect("pdf");
    std::fs::set_permissions(&pdf, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let out = as_writer(
        &env,
        &[
            "submit",
            "--to",
            "2480",
            "--case",
            common::CASE,
            "--anvisningsbeslut",
            &pdf.to_string_lossy(),
        ],
    );
    assert!(
        out.status.success(),
        "the writer could not submit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(env.wait_receipt(&id)["state"], "print-queued");

    // Another's entries in the shared folders (sticky): neither renamed nor removed.
    let others = env.spool().join("tmp/draft-someone-else");
    std::fs::create_dir_all(&others).expect("mkdir");
    for args in [
        vec!["mv", others.to_str().expect("path"), "/tmp/stolen-draft"],
        vec!["rmdir", others.to_str().expect("path")],
    ] {
        let tried = Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .args(&args)
            .output()
            .expect("setpriv");
        assert!(!tried.status.success(), "{args:?} went through");
    }
    assert!(others.is_dir());

    // Nothing else: the operator socket, the store's keys, the receipts, another's jobs.
    let list = as_writer(&env, &["list"]);
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&id),
        "the writer listed jobs: {}",
        String::from_utf8_lossy(&list.stdout)
    );
    assert!(
        env.path().join("state/kurir.sock").exists(),
        "the operator socket is there"
    );
    for path in [
        "state/kurir.sock",
        "state/proof.key",
        "state/integrity.key",
        "spool/receipts",
        "spool/active",
    ] {
        let probe = Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .args(["test", "-r"])
            .arg(env.path().join(path))
            .status()
            .expect("test");
        assert!(!probe.success(), "the writer can read {path}");
    }
    let cat = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg("cat")
        .arg(env.path().join("state/proof.key"))
        .output()
        .expect("cat");
    assert!(!cat.status.success() && cat.stdout.is_empty());
    env.stop();
}

#[test]
fn kurir_s_user_outside_the_submit_group_is_refused_at_start_with_what_to_do() {
    let mut env = Env::new();
    env.set_env("KURIR_SPOOL__SUBMIT_GROUP", "no-such-group-here");
    let out = env.run(&["run"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no such group on this machine"), "{said}");
}
