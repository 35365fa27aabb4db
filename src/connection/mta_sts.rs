//! MTA-STS (RFC 8461): a domain that publishes `_mta-sts.<domain>` TXT `v=STSv1; id=…` serves
//! its policy at `https://mta-sts.<domain>/.well-known/mta-sts.txt` over verified TLS. The
//! policy names the MX hosts senders may use (`mx:` patterns) and whether a sender must refuse
//! others (`mode: enforce`). Fetched with hyper over OpenSSL; the host is looked up with the
//! check's own resolver; a policy is kept for its `max_age` while its `id` stays the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use openssl::ssl::{SslConnector, SslVerifyMode};
use tokio::net::TcpStream;

use super::dns::Resolver;
use crate::registry::connection::StsMode;

/// The largest policy kurir reads (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// A fetched policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The TXT record's `id`.
    pub id: String,
    /// The mode.
    pub mode: StsMode,
    /// The `mx` patterns.
    pub mx: Vec<String>,
    /// Seconds it may be cached.
    pub max_age: u64,
}

/// What the domain publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No `v=STSv1` record.
    None,
    /// A policy.
    Policy(Policy),
    /// A record but no usable policy.
    Unavailable(String),
}

/// Fetches and caches policies.
pub struct MtaSts {
    connector: SslConnector,
    port: u16,
    timeout: Duration,
    cache: Mutex<HashMap<String, (Policy, Timestamp)>>,
}

impl MtaSts {
    /// Policies fetched over TLS verified by `connector`'s roots, from `port`.
    pub fn new(connector: SslConnector, port: u16, timeout: Duration) -> MtaSts {
        MtaSts {
            connector,
            port,
            timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The domain's policy now.
    pub async fn lookup(&self, resolver: &Resolver, domain: &str) -> Found {
        let txt = match resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(answer) => answer.records,
            Err(super::dns::DnsError::NoSuchName(_)) => {
                return self.cached(domain).map_or(Found::None, Found::Policy)
            }
            Err(e) => return Found::Unavailable(format!("the _mta-sts record: {e}")),
        };
        let ids: Vec<String> = txt.iter().filter_map(|t| record_id(t)).collect();
        let id = match ids.as_slice() {
            // A policy still in force holds without its record (RFC 8461 §5.1): removing the
            // record is no way to turn it off.
            [] => return self.cached(domain).map_or(Found::None, Found::Policy),
            [id] => id.clone(),
            _ => return Found::Unavailable("more than one v=STSv1 record".into()),
        };
        let now = Timestamp::now();
        if let Some(policy) = self.cached(domain).filter(|p| p.id == id) {
            return Found::Policy(policy);
        }
        match self.fetch(resolver, domain).await {
            Ok(text) => match parse_policy(&text, &id) {
                Ok(policy) => {
                    self.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(domain.to_string(), (policy.clone(), now));
                    Found::Policy(policy)
                }
                Err(e) => Found::Unavailable(e),
            },
            // A cached policy still in force is used while the host is down (§5.1).
            Err(e) => self
                .cached(domain)
                .map_or(Found::Unavailable(e), Found::Policy),
        }
    }

    /// The cached policy of `domain`, while its max_age lasts.
    fn cached(&self, domain: &str) -> Option<Policy> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (policy, fetched) = cache.get(domain)?;
        let age = Timestamp::now().as_second() - fetched.as_second();
        (age < i64::try_from(policy.max_age).unwrap_or(i64::MAX)).then(|| policy.clone())
    }

    async fn fetch(&self, resolver: &Resolver, domain: &str) -> Result<String, String> {
        let host = format!("mta-sts.{domain}");
        let addresses = resolver
            .addresses(&host)
            .await
            .map_err(|e| e.to_string())?
            .records;
        let address = addresses
            .first()
            .ok_or_else(|| format!("{host} has no address"))?;
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((*address, self.port)))
            .await
            .map_err(|_| format!("{host}: connection timed out"))?
            .map_err(|e| format!("{host}: {e}"))?;
        let mut ssl = self
            .connector
            .configure()
            .and_then(|c| c.into_ssl(&host))
            .map_err(|e| e.to_string())?;
        ssl.set_verify(SslVerifyMode::PEER);
        ssl.param_mut().set_host(&host).map_err(|e| e.to_string())?;
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
        tokio::time::timeout(self.timeout, std::pin::Pin::new(&mut tls).connect())
            .await
            .map_err(|_| format!("{host}: TLS handshake timed out"))?
            .map_err(|e| {
                let verify = tls.ssl().verify_result();
                if verify.as_raw() != 0 {
                    format!(
                        "{host}: certificate not verified: {}",
                        verify.error_string()
                    )
                } else {
                    format!("{host}: {e}")
                }
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        // The connection's task ends with this fetch, however it ends.
        let driver = AbortOnDrop(tokio::spawn(connection));
        let request = http::Request::get("/.well-known/mta-sts.txt")
            .header(http::header::HOST, host.as_str())
            .body(Empty::<hyper::body::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.timeout, sender.send_request(request))
            .await
            .map_err(|_| format!("{host}: no answer"))?
            .map_err(|e| format!("{host}: {e}"))?;
        if response.status() != http::StatusCode::OK {
            return Err(format!("{host} answered {}", response.status()));
        }
        let body = tokio::time::timeout(
            self.timeout,
            Limited::new(response.into_body(), MAX_POLICY_BYTES).collect(),
        )
        .await
        .map_err(|_| format!("{host}: the policy did not arrive"))?
        .map_err(|e| format!("{host}: {e}"))?
        .to_bytes();
        drop(driver);
        String::from_utf8(body.to_vec()).map_err(|_| format!("{host}: the policy is not UTF-8"))
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `id` of a `v=STSv1` TXT record, if it is one.
fn record_id(txt: &str) -> Option<String> {
    let mut fields = txt.split(';').map(str::trim);
    if fields.next()? != "v=STSv1" {
        return None;
    }
    fields
        .filter_map(|f| f.split_once('='))
        .find(|(k, _)| k.trim() == "id")
        .map(|(_, v)| v.trim().to_string())
}

/// Reads a policy file (RFC 8461 §3.2).
pub fn parse_policy(text: &str, id: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_string()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => StsMode::Enforce,
                    "testing" => StsMode::Testing,
                    "none" => StsMode::None,
                    other => return Err(format!("unknown mode {other:?}")),
                })
            }
            "max_age" => {
                max_age = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| format!("max_age {value:?} is not a number"))?,
                )
            }
            "mx" => mx.push(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("the policy is not version STSv1".into());
    }
    let mode = mode.ok_or("the policy has no mode")?;
    let max_age = max_age.ok_or("the policy has no max_age")?;
    if mode != StsMode::None && mx.is_empty() {
        return Err("the policy lists no mx".into());
    }
    Ok(Policy {
        id: id.to_string(),
        mode,
        mx,
        max_age: max_age.min(31_557_600),
    })
}

/// Whether `host` matches one of the policy's patterns (`*.` covers exactly one label).
pub fn covers(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|p| match p.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => *p == host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_is_read_as_rfc_8461_writes_it() {
        let policy = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.umea.se\r\nmx: *.umea.se\r\nmax_age: 604800\r\n",
            "20261207",
        )
        .expect("policy");
        assert_eq!(policy.mode, StsMode::Enforce);
        assert_eq!(policy.max_age, 604800);
        assert!(covers(&policy.mx, "mail.umea.se"));
        assert!(covers(&policy.mx, "mx2.umea.se."));
        assert!(!covers(&policy.mx, "a.b.umea.se"));
        assert!(!covers(&policy.mx, "umea.se.attacker.example"));
        assert!(parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n", "x").is_err());
        assert!(parse_policy("mode: enforce\nmx: a\nmax_age: 1\n", "x").is_err());
        assert_eq!(
            record_id("v=STSv1; id=20261207T1;"),
            Some("20261207T1".into())
        );
        assert_eq!(record_id("v=spf1 -all"), None);
    }
}
