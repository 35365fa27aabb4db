//! The control socket speaks a versioned protocol: a command line of another version gets a
//! clear error instead of a misread answer, both ways round.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use common::Env;

fn exchange(socket: &std::path::Path, line: &str) -> serde_json::Value {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .write_all(format!("{line}\n").as_bytes())
        .expect("write");
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).expect("read");
    serde_json::from_str(&answer).expect("json answer")
}

#[test]
fn a_client_of_another_version_is_told_so_not_misread() {
    let mut env = Env::new();
    env.start();
    let socket = env.path().join("state/kurir.sock");
    // kurir 0.1.0's command line sent `{"op": …}` and reads `{"ok", "error"}`.
    let old = exchange(
        &socket,
        r#"{"op":"status","id":"20260101-000000-000000000000"}"#,
    );
    assert_eq!(old["ok"], false, "{old}");
    assert!(
        old["error"].as_str().unwrap_or("").contains("protocol 4"),
        "{old}"
    );
    // A newer one, 0.2's (whose answers named their variant) and 0.3's first (which named
    // calls in kebab-case) are answered with this daemon's protocol and why.
    for theirs in [5, 3, 2] {
        let other = exchange(
            &socket,
            &format!(
                r#"{{"protocol":{theirs},"principal":{{"operator":"x"}},"command":{{"command":"Queue"}}}}"#
            ),
        );
        assert_eq!(other["protocol"], 4, "{other}");
        assert!(
            other["result"]["err"].to_string().contains("protocol"),
            "{other}"
        );
    }
    // The current one gets the call's reply itself: the queue's shape.
    let now = exchange(
        &socket,
        r#"{"protocol":4,"principal":{"operator":"x"},"command":{"command":"Queue"}}"#,
    );
    assert!(now["result"]["ok"]["by_state"].is_array(), "{now}");
    env.stop();
}

#[test]
fn this_command_line_refuses_an_older_daemons_answer() {
    let env = Env::new();
    let state = env.path().join("state");
    std::fs::create_dir_all(&state).expect("state");
    // What a 0.1.0 daemon answers to anything it cannot parse.
    let listener = UnixListener::bind(state.join("kurir.sock")).expect("bind");
    let old_daemon = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).expect("read");
        (&stream)
            .write_all(b"{\"ok\":false,\"error\":\"malformed request: unknown field\"}\n")
            .expect("answer");
    });
    let out = env.run(&["list"]);
    old_daemon.join().expect("old daemon");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("speaks control protocol 1") && stderr.contains("this kurir speaks 4"),
        "{stderr}"
    );
}
