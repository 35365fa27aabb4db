//! Server plumbing, written once for every listener kurir has — the control sockets, the
//! portal and `/metrics`: a bounded accept loop and an HTTP/1 connection with its timeouts.
//!
//! The accept loop takes a permit before it accepts (at the limit, new connections wait in
//! the kernel's backlog instead of being accepted and dropped), refuses a client that already
//! holds its share of the connections, backs off when `accept` fails (out of file
//! descriptors, say) instead of spinning, and on shutdown stops accepting and lets the
//! connections in flight finish within a grace period (a `JoinSet`), as tokio's mini-redis
//! does. HTTP connections get hyper's header-read timeout — which needs hyper's timer set,
//! or it is silently off — and a limit on a connection's whole life, so a client that
//! connects and waits holds a slot for seconds, not for ever.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How many connections a listener serves at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections in all.
    pub connections: usize,
    /// Connections from one client (one address, or one user on a Unix socket).
    pub per_client: usize,
    /// How long connections in flight may take to finish at shutdown.
    pub grace: Duration,
}

/// A listener the accept loop can serve: it yields a connection and who it comes from.
pub trait Listener: Send + 'static {
    /// The connection.
    type Io: Send + 'static;
    /// Who is at the other end, for the per-client limit.
    type Client: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static;
    /// Accepts one connection.
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Client)>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Client = std::net::IpAddr;
    async fn accept(&self) -> std::io::Result<(Self::Io, Self::Client)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Small answers must not wait for the next segment (Nagle).
        let _ = stream.set_nodelay(true);
        Ok((stream, peer.ip()))
    }
}

/// The network a client address belongs to, for limits per client: an IPv4 address's /24 and
/// an IPv6 address's /64 (an IPv4-mapped IPv6 address counts as its IPv4 address). One host
/// commands a whole /64, and neighbouring IPv4 addresses are cheap: limits per single address
/// are limits per attacker only in name.
pub fn network_of(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The site a network belongs to, for the few things a whole site shares (the portal's TLS
/// handshakes): an IPv6 /48, which one end site is given (a home or an office gets a /48 to a
/// /60, so its /64s are many); an IPv4 address's /24 as [`network_of`].
pub fn site_of(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match network_of(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// A TCP listener whose clients are counted by network ([`network_of`]), not by address.
pub struct ByNetwork(pub tokio::net::TcpListener);

impl Listener for ByNetwork {
    type Io = tokio::net::TcpStream;
    /// The client's network (/24 or /64).
    type Client = std::net::IpAddr;
    async fn accept(&self) -> std::io::Result<(Self::Io, Self::Client)> {
        let (stream, address) = <tokio::net::TcpListener as Listener>::accept(&self.0).await?;
        Ok((stream, network_of(address)))
    }
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    /// The peer's user id (SO_PEERCRED).
    type Client = Option<u32>;
    async fn accept(&self) -> std::io::Result<(Self::Io, Self::Client)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        let uid = stream.peer_cred().ok().map(|c| c.uid());
        Ok((stream, uid))
    }
}

/// Connections per client, bounded: a client over its share is refused at once.
#[derive(Debug, Clone)]
pub struct PerClient<C: Eq + Hash> {
    counts: Arc<Mutex<HashMap<C, usize>>>,
    limit: usize,
}

impl<C: Eq + Hash + Clone> PerClient<C> {
    /// At most `limit` connections per client.
    pub fn new(limit: usize) -> Self {
        PerClient {
            counts: Arc::default(),
            limit: limit.max(1),
        }
    }

    /// A slot for one more connection of `client`, or `None` when it holds its share.
    pub fn take(&self, client: C) -> Option<ClientSlot<C>> {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(client.clone()).or_default();
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            client,
            counts: self.counts.clone(),
        })
    }
}

/// One client's connection, counted until dropped.
pub struct ClientSlot<C: Eq + Hash> {
    client: C,
    counts: Arc<Mutex<HashMap<C, usize>>>,
}

impl<C: Eq + Hash> Drop for ClientSlot<C> {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

/// Serves `listener` until `shutdown` turns true: each connection is handed to `handle` with
/// the client and a shutdown receiver, in its own task, within `limits`.
pub async fn serve<L, F, Fut>(
    listener: L,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
    handle: F,
) where
    L: Listener,
    F: Fn(L::Io, L::Client, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.connections.max(1)));
    let per_client = PerClient::new(limits.per_client);
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        while tasks.try_join_next().is_some() {}
        if *shutdown.borrow() {
            break;
        }
        // A permit before accepting: at the limit, connections wait in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (io, client) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(10);
                pair
            }
            Err(e) => {
                tracing::warn!(listener = what, error = %e, wait = ?backoff, "accept failed; backing off");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(slot) = per_client.take(client.clone()) else {
            tracing::debug!(listener = what, client = ?client, "too many connections from one client; refused");
            continue;
        };
        let connection = handle(io, client, shutdown.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let _slot = slot;
            connection.await;
        });
    }
    // Stop accepting; let what is in flight finish within the grace period.
    let drained = tokio::time::timeout(limits.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = what,
            "connections still open after the grace period; closing them"
        );
        tasks.abort_all();
    }
}

/// The timeouts of one HTTP connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// A request's head must arrive within this (also while a kept-alive connection waits
    /// for its next request: an idle connection is closed after it).
    pub header_read: Duration,
    /// The longest a connection may live, whatever it does.
    pub lifetime: Duration,
    /// How long a request in flight may take to finish at shutdown.
    pub grace: Duration,
}

/// Serves HTTP/1 on one connection with `service` until the client is done, a timeout
/// passes, or shutdown (then the request in flight is finished first).
pub async fn serve_http<I, S, B>(
    io: I,
    service: S,
    timeouts: HttpTimeouts,
    mut shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
        > + Send,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            return;
        }
        _ = tokio::time::sleep(timeouts.lifetime) => {
            tracing::debug!("HTTP connection reached its lifetime; closing");
        }
        _ = shutdown.changed() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(timeouts.grace, connection).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn clients_are_counted_by_their_network() {
        assert_eq!(network_of(ip("192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(network_of(ip("192.0.2.1")), network_of(ip("192.0.2.254")));
        assert_ne!(network_of(ip("192.0.2.1")), network_of(ip("192.0.3.1")));
        assert_eq!(network_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(network_of(ip("::ffff:192.0.2.9")), ip("192.0.2.0"));
        assert_eq!(
            site_of(ip("2001:db8:1:2f::1")),
            site_of(ip("2001:db8:1:30::9"))
        );
        assert_eq!(site_of(ip("2001:db8:1:2::1")), ip("2001:db8:1::"));
        assert_eq!(site_of(ip("192.0.2.77")), ip("192.0.2.0"));
    }

    #[test]
    fn a_client_over_its_share_gets_no_slot_until_one_is_given_back() {
        let per = PerClient::new(2);
        let a = per.take("a").expect("first");
        let _b = per.take("a").expect("second");
        assert!(per.take("a").is_none());
        assert!(per.take("b").is_some());
        drop(a);
        assert!(per.take("a").is_some());
    }
}
