//! The resolver the connection check asks: hickory's DNS client over TCP to the configured
//! nameservers (or those of /etc/resolv.conf), with the DO bit set so that a validating
//! resolver says, by its AD flag, whether it validated the answer with DNSSEC. kurir does not
//! validate DNSSEC itself, as Postfix does not: it trusts a validating resolver on this host
//! (RFC 7672 §2.1.1), and applies DANE only to answers that resolver vouched for.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use hickory_client::client::Client;
use hickory_client::proto::op::{Query, ResponseCode};
use hickory_client::proto::rr::{Name, RData, Record, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::tcp::TcpClientStream;
use hickory_client::proto::xfer::{DnsHandle, DnsRequestOptions};

use crate::config::DnsSettings;

/// Records of one type for one name, and whether the resolver validated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The records (empty: the name exists but has none of this type).
    pub records: Vec<T>,
    /// The resolver set the AD flag: DNSSEC-validated.
    pub validated: bool,
}

/// One TLSA record (RFC 6698), as numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// 0 the whole certificate, 1 its public key.
    pub selector: u8,
    /// 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}

/// Why a lookup failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    /// The name does not exist.
    #[error("{0} does not exist (NXDOMAIN)")]
    NoSuchName(String),
    /// The resolver answered with an error (SERVFAIL: often a DNSSEC validation failure).
    #[error("the resolver answered {code} for {name}")]
    Refused {
        /// The name.
        name: String,
        /// The response code.
        code: String,
    },
    /// No resolver answered.
    #[error("no answer from {servers} for {name}: {detail}")]
    NoAnswer {
        /// The name.
        name: String,
        /// The servers tried.
        servers: String,
        /// The last error.
        detail: String,
    },
    /// The name is not a DNS name.
    #[error("{0:?} is not a DNS name")]
    BadName(String),
    /// No nameserver to ask.
    #[error("no nameserver: {0}")]
    NoNameserver(String),
}

/// A stub resolver over hickory's client.
#[derive(Debug, Clone)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Resolver {
    /// The nameservers of `[dns]`, or of /etc/resolv.conf when none are set.
    pub fn new(settings: &DnsSettings, timeout: Duration) -> Result<Resolver, DnsError> {
        let mut servers = Vec::new();
        for s in &settings.nameservers {
            let addr = match s.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => SocketAddr::new(
                    s.parse::<IpAddr>()
                        .map_err(|_| DnsError::NoNameserver(format!("[dns] nameservers: {s:?}")))?,
                    53,
                ),
            };
            servers.push(addr);
        }
        if servers.is_empty() {
            let text = std::fs::read("/etc/resolv.conf")
                .map_err(|e| DnsError::NoNameserver(format!("/etc/resolv.conf: {e}")))?;
            let conf = resolv_conf::Config::parse(&text)
                .map_err(|e| DnsError::NoNameserver(format!("/etc/resolv.conf: {e}")))?;
            servers = conf
                .nameservers
                .iter()
                .map(|ns| SocketAddr::new(IpAddr::from(ns.clone()), 53))
                .collect();
        }
        if servers.is_empty() {
            return Err(DnsError::NoNameserver("none configured".into()));
        }
        Ok(Resolver { servers, timeout })
    }

    /// Whether answers can count as DNSSEC-validated: every nameserver is on this host (a
    /// remote resolver's AD flag could be forged on the way).
    pub fn trusts_dnssec(&self) -> bool {
        self.servers.iter().all(|s| s.ip().is_loopback())
    }

    /// The nameservers asked, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Asks each nameserver in turn until one answers.
    async fn ask(&self, name: &str, kind: RecordType) -> Result<(Vec<Record>, bool), DnsError> {
        let fqdn = Name::from_ascii(name)
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .map_err(|_| DnsError::BadName(name.to_string()))?;
        let mut last = String::from("no server");
        for server in &self.servers {
            match self.ask_one(*server, &fqdn, kind).await {
                Ok(message) => {
                    let code = message.response_code();
                    if code == ResponseCode::NXDomain {
                        return Err(DnsError::NoSuchName(name.to_string()));
                    }
                    if code != ResponseCode::NoError {
                        return Err(DnsError::Refused {
                            name: name.to_string(),
                            code: code.to_string(),
                        });
                    }
                    // The AD flag is only as good as the path it came over: trusted from a
                    // resolver on this host only (RFC 7672 §2.1.1, as Postfix does).
                    let validated = message.authentic_data() && server.ip().is_loopback();
                    let records = message.answers().to_vec();
                    return Ok((records, validated));
                }
                Err(e) => last = e,
            }
        }
        Err(DnsError::NoAnswer {
            name: name.to_string(),
            servers: self
                .servers
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            detail: last,
        })
    }

    async fn ask_one(
        &self,
        server: SocketAddr,
        name: &Name,
        kind: RecordType,
    ) -> Result<hickory_client::proto::op::Message, String> {
        let (stream, handle) = TcpClientStream::new(
            server,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::new(),
        );
        let (client, background) = Client::with_timeout(stream, handle, self.timeout, None)
            .await
            .map_err(|e| e.to_string())?;
        let background = tokio::spawn(background);
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_set_dnssec_ok = true;
        options.recursion_desired = true;
        let answer = tokio::time::timeout(
            self.timeout,
            client
                .lookup(Query::query(name.clone(), kind), options)
                .next(),
        )
        .await;
        background.abort();
        match answer {
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
            Ok(None) => Err("the connection closed".into()),
            Ok(Some(Err(e))) => Err(e.to_string()),
            Ok(Some(Ok(response))) => Ok(response.into_message()),
        }
    }

    /// The MX records of `domain`, most preferred first: (preference, host). A name without
    /// MX records gives an empty list (the caller uses the domain itself, RFC 5321 §5.1).
    pub async fn mx(&self, domain: &str) -> Result<Answer<(u16, String)>, DnsError> {
        let (records, validated) = self.ask(domain, RecordType::MX).await?;
        let mut mx: Vec<(u16, String)> = records
            .iter()
            .filter_map(|r| match r.data() {
                RData::MX(mx) => Some((mx.preference(), host_name(mx.exchange()))),
                _ => None,
            })
            .collect();
        mx.sort();
        Ok(Answer {
            records: mx,
            validated,
        })
    }

    /// The IPv4 and IPv6 addresses of `host`.
    pub async fn addresses(&self, host: &str) -> Result<Answer<IpAddr>, DnsError> {
        let (v4, v4_validated) = self.ask(host, RecordType::A).await?;
        let (v6, v6_validated) = self.ask(host, RecordType::AAAA).await.unwrap_or_default();
        let mut records: Vec<IpAddr> = Vec::new();
        for r in v4.iter().chain(v6.iter()) {
            match r.data() {
                RData::A(a) => records.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => records.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
        Ok(Answer {
            validated: v4_validated && (v6.is_empty() || v6_validated),
            records,
        })
    }

    /// The TLSA records of `_port._tcp.host`.
    pub async fn tlsa(&self, host: &str, port: u16) -> Result<Answer<Tlsa>, DnsError> {
        let name = format!("_{port}._tcp.{host}");
        let (records, validated) = match self.ask(&name, RecordType::TLSA).await {
            Ok(answer) => answer,
            Err(DnsError::NoSuchName(_)) => (Vec::new(), true),
            Err(e) => return Err(e),
        };
        let records = records
            .iter()
            .filter_map(|r| match r.data() {
                RData::TLSA(t) => Some(Tlsa {
                    usage: t.cert_usage().into(),
                    selector: t.selector().into(),
                    matching: t.matching().into(),
                    data: t.cert_data().to_vec(),
                }),
                _ => None,
            })
            .collect();
        Ok(Answer { records, validated })
    }

    /// The TXT strings of `name` (each record's strings joined).
    pub async fn txt(&self, name: &str) -> Result<Answer<String>, DnsError> {
        let (records, validated) = self.ask(name, RecordType::TXT).await?;
        let records = records
            .iter()
            .filter_map(|r| match r.data() {
                RData::TXT(t) => Some(
                    t.txt_data()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).to_string())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        Ok(Answer { records, validated })
    }
}

/// A DNS name as kurir writes host names: lower case, no trailing dot.
fn host_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}
