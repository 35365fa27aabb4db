//! The relay's TLS policy for municipalities' domains, from kurir's checks: Postfix asks with
//! `smtp_tls_policy_maps = socketmap:unix:/run/kurir-tls/policy.sock:tlspolicy` and kurir
//! answers, per domain decisions go to, `dane-only` where every MX matched validated TLSA
//! records, else `secure match=<the MX names kurir checked>`, and plain `secure` (the domain's
//! own name must be on the certificate) for a domain not checked yet. Any other domain is
//! `NOTFOUND`: the relay's other mail keeps its own policy. So the relay can never hand a
//! decision over in clear or to a server kurir has not verified.
//!
//! The socketmap protocol (Postfix's socketmap_table(5)): each request and reply is a netstring
//! (`<length>:<bytes>,`); a request is `<map name> <key>`, a reply `OK <value>`, `NOTFOUND `,
//! `TEMP <reason>` or `PERM <reason>`. A connection may carry many requests.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::registry::connection::{domain_of, ConnectionCheck, Verdict};
use crate::store::Store;

/// The map name kurir answers (`socketmap:unix:PATH:tlspolicy`).
pub const MAP_NAME: &str = "tlspolicy";
/// The longest request read (a domain name is at most 253 bytes).
pub const MAX_REQUEST_BYTES: usize = 1024;
/// Connections served at once (one per relay `smtp` process that asks).
pub const MAX_CONNECTIONS: usize = 32;
/// A connection silent this long is closed (Postfix opens a new one when it needs to).
pub const IDLE: Duration = Duration::from_secs(100);

/// What the relay is told for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// A municipality's domain: the policy table value.
    Policy(String),
    /// Not a domain decisions go to.
    NotFound,
}

/// The policy for a domain decisions go to, from its latest check (`None`: not checked yet).
pub fn policy_for(latest: Option<&ConnectionCheck>) -> String {
    match latest {
        Some(check) if check.verdict == Verdict::Passed && check.dane_everywhere() => {
            "dane-only".into()
        }
        // The MX names kurir verified; a failed check vouches for none of them, and the
        // relay then needs the certificate to name the domain itself (Postfix's default).
        Some(check) if check.verdict == Verdict::Passed && !check.mx.is_empty() => {
            format!("secure match={}", check.mx_hosts().join(":"))
        }
        _ => "secure".into(),
    }
}

/// The answer for `key` (a next-hop domain as Postfix asks it) from what the store knows.
pub fn answer(store: &Store, key: &str) -> Result<PolicyAnswer, crate::store::StoreError> {
    let key = key.trim().trim_end_matches('.').to_ascii_lowercase();
    // Only where decisions go now: an address a portal user merely typed (not yet proven and
    // approved) must not change the relay's policy for anyone else's mail to that domain.
    let decision_domain = store.all_registered()?.into_iter().any(|(_, r)| {
        r.active_address
            .as_deref()
            .and_then(domain_of)
            .is_some_and(|d| d == key)
    });
    if !decision_domain {
        return Ok(PolicyAnswer::NotFound);
    }
    let latest = store.latest_check(&key)?;
    Ok(PolicyAnswer::Policy(policy_for(latest.as_ref())))
}

/// Serves the relay's lookups until shutdown, to `clients` (uids: root and the relay's
/// user) only: another local user cannot hold the connections the relay needs.
pub async fn serve(
    listener: UnixListener,
    store: Store,
    clients: Vec<u32>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let uid = stream.peer_cred().ok().map(|c| c.uid());
        if !uid.is_some_and(|u| clients.contains(&u)) {
            tracing::warn!(uid = ?uid, "TLS policy socket: a client that is not the relay refused");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("TLS policy socket: too many connections; one refused");
            continue;
        };
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, store).await {
                tracing::debug!(error = %e, "TLS policy connection ended");
            }
            drop(slot);
        });
    }
}

async fn connection(stream: UnixStream, store: Store) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let request = match tokio::time::timeout(IDLE, read_netstring(&mut read)).await {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Some(request))) => request,
        };
        let reply = match request.split_once(' ') {
            Some((MAP_NAME, key)) => {
                let store = store.clone();
                let key = key.to_string();
                match tokio::task::spawn_blocking(move || answer(&store, &key)).await {
                    Ok(Ok(PolicyAnswer::Policy(value))) => format!("OK {value}"),
                    Ok(Ok(PolicyAnswer::NotFound)) => "NOTFOUND ".into(),
                    Ok(Err(e)) => format!("TEMP the store: {e}"),
                    Err(_) => "TEMP internal error".into(),
                }
            }
            _ => "PERM unknown map".into(),
        };
        write
            .write_all(format!("{}:{reply},", reply.len()).as_bytes())
            .await?;
    }
}

/// Reads one netstring; `None` at a clean end of the stream.
async fn read_netstring<R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
) -> std::io::Result<Option<String>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut length = 0usize;
    let mut digits = 0;
    loop {
        let mut byte = [0u8; 1];
        if read.read(&mut byte).await? == 0 {
            return if digits == 0 {
                Ok(None)
            } else {
                Err(bad("cut off"))
            };
        }
        match byte[0] {
            b'0'..=b'9' if digits < 5 => {
                length = length * 10 + usize::from(byte[0] - b'0');
                digits += 1;
            }
            b':' if digits > 0 => break,
            _ => return Err(bad("not a netstring")),
        }
    }
    if length > MAX_REQUEST_BYTES {
        return Err(bad("request too long"));
    }
    let mut body = vec![0u8; length + 1];
    read.read_exact(&mut body).await?;
    if body.pop() != Some(b',') {
        return Err(bad("netstring without its comma"));
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| bad("not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::connection::{Dane, MtaSts, MxFinding};

    fn mx(host: &str, dane: Dane) -> MxFinding {
        MxFinding {
            host: host.into(),
            preference: 10,
            address: None,
            dane,
            tls: None,
            passed: true,
        }
    }

    #[test]
    fn the_relay_is_told_dane_only_or_the_mx_names_kurir_checked() {
        let mut check = ConnectionCheck {
            domain: "umea.se".into(),
            checked_at: jiff::Timestamp::UNIX_EPOCH,
            mx_validated: true,
            mx: vec![
                mx("mx1.umea.se", Dane::Matched),
                mx("mx2.umea.se", Dane::Matched),
            ],
            mta_sts: MtaSts::None,
            verdict: Verdict::Passed,
            problems: Vec::new(),
        };
        assert_eq!(policy_for(Some(&check)), "dane-only");
        check.mx[1].dane = Dane::NoTlsa;
        assert_eq!(
            policy_for(Some(&check)),
            "secure match=mx1.umea.se:mx2.umea.se"
        );
        check.verdict = Verdict::Failed;
        check.mx[1].dane = Dane::Matched;
        assert_eq!(policy_for(Some(&check)), "secure");
        assert_eq!(policy_for(None), "secure");
    }

    #[tokio::test]
    async fn netstrings_are_read_and_bad_ones_refused() {
        let mut ok: &[u8] = b"22:tlspolicy umea.se.test,";
        assert_eq!(
            read_netstring(&mut ok).await.expect("read").as_deref(),
            Some("tlspolicy umea.se.test")
        );
        let mut empty: &[u8] = b"";
        assert_eq!(read_netstring(&mut empty).await.expect("end"), None);
        for bad in [&b"5:abcde;"[..], b"x:abc,", b"99999:a", b"3:ab"] {
            let mut r = bad;
            assert!(read_netstring(&mut r).await.is_err(), "{bad:?}");
        }
    }
}
