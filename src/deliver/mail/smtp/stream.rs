//! The socket lettre holds: plain TCP that kurir upgrades to TLS in place between two SMTP
//! commands (STARTTLS), and the commit gate that holds back the end of each message until
//! kurir may record its outcome.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedMutexGuard;
use tokio_openssl::SslStream;

enum Inner {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
    Taken,
}

/// Holds back the end of a message until the relay's commit token is held.
///
/// Armed with the message's length before lettre writes the content: that many bytes pass
/// freely (SMTP transparency only ever adds bytes, so the end-of-data marker is always
/// beyond them); the first byte after them waits for the token. The token is then kept
/// until kurir has recorded the server's answer.
enum Gate {
    /// Not armed: writes pass.
    Open,
    /// `allowance` more bytes may pass before the token is needed.
    Counting {
        allowance: u64,
        lock: Arc<tokio::sync::Mutex<()>>,
    },
    /// Waiting for the token.
    Acquiring(Pin<Box<dyn std::future::Future<Output = OwnedMutexGuard<()>> + Send>>),
    /// The token is held: the rest of the message, and its end, may pass.
    Held(OwnedMutexGuard<()>),
}

/// A socket that starts as plain TCP and can be upgraded to TLS in place, while lettre holds
/// it. kurir keeps a [`Switch`] handle to perform the upgrade between two SMTP commands, and
/// to hold back the end of each message (see `Switch::arm_commit_gate`).
#[derive(Clone)]
pub struct SwitchStream {
    inner: Arc<Mutex<Inner>>,
    gate: Arc<Mutex<Gate>>,
    /// Bytes the peer may still send (a server kurir does not trust yet cannot make lettre
    /// buffer an endless line).
    read_budget: Arc<std::sync::atomic::AtomicU64>,
}

/// kurir's handle on a [`SwitchStream`] given to lettre.
pub struct Switch {
    inner: Arc<Mutex<Inner>>,
    gate: Arc<Mutex<Gate>>,
}

impl SwitchStream {
    pub(crate) fn plain(tcp: TcpStream) -> (SwitchStream, Switch) {
        SwitchStream::plain_limited(tcp, u64::MAX)
    }

    /// Like [`SwitchStream::plain`], reading at most `limit` bytes from the peer in all.
    pub(crate) fn plain_limited(tcp: TcpStream, limit: u64) -> (SwitchStream, Switch) {
        let inner = Arc::new(Mutex::new(Inner::Plain(tcp)));
        let gate = Arc::new(Mutex::new(Gate::Open));
        (
            SwitchStream {
                inner: inner.clone(),
                gate: gate.clone(),
                read_budget: Arc::new(std::sync::atomic::AtomicU64::new(limit)),
            },
            Switch { inner, gate },
        )
    }

    /// How much of `want` bytes may be written now; `Pending` while the token is awaited.
    fn pass_gate(&self, cx: &mut Context<'_>, want: usize) -> Poll<usize> {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match &mut *gate {
                Gate::Open | Gate::Held(_) => return Poll::Ready(want),
                Gate::Counting { allowance, .. } if *allowance > 0 => {
                    return Poll::Ready(want.min(usize::try_from(*allowance).unwrap_or(want)))
                }
                Gate::Counting { lock, .. } => {
                    *gate = Gate::Acquiring(Box::pin(lock.clone().lock_owned()));
                }
                Gate::Acquiring(acquiring) => match acquiring.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(guard) => *gate = Gate::Held(guard),
                },
            }
        }
    }

    /// Counts `written` bytes against the gate's allowance.
    fn passed_gate(&self, written: usize) {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Gate::Counting { allowance, .. } = &mut *gate {
            *allowance = allowance.saturating_sub(written as u64);
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl Switch {
    pub(crate) fn take_plain(&self) -> io::Result<TcpStream> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *guard, Inner::Taken) {
            Inner::Plain(tcp) => Ok(tcp),
            other => {
                *guard = other;
                Err(io::Error::other("connection is not plain TCP"))
            }
        }
    }

    pub(crate) fn put_tls(&self, stream: SslStream<TcpStream>) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *guard = Inner::Tls(Box::new(stream));
    }

    /// Lets the next `content_len` bytes through and holds every byte after them until
    /// `lock` is held. Arm it right before the message content: the content's last bytes
    /// and the end-of-data marker — what lets the server accept the message — then wait for
    /// the commit token, while the bulk of the message streams alongside other connections.
    pub(super) fn arm_commit_gate(&self, content_len: u64, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        *gate = Gate::Counting {
            allowance: content_len,
            lock,
        };
    }

    /// Opens the gate again; returns the token if the end of the message went through it.
    pub(super) fn disarm_commit_gate(&self) -> Option<OwnedMutexGuard<()>> {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *gate, Gate::Open) {
            Gate::Held(guard) => Some(guard),
            _ => None,
        }
    }
}

fn taken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection is being upgraded")
}

impl AsyncRead for SwitchStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use std::sync::atomic::Ordering;
        let before = buf.filled().len();
        let read = self.with(|inner| match inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Inner::Taken => Poll::Ready(Err(taken())),
        });
        let got = (buf.filled().len() - before) as u64;
        if got > 0 {
            let left = self.read_budget.load(Ordering::Relaxed);
            if got > left {
                self.read_budget.store(0, Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::other(
                    "the server sent more than kurir reads from it",
                )));
            }
            if left != u64::MAX {
                self.read_budget.store(left - got, Ordering::Relaxed);
            }
        }
        read
    }
}

impl AsyncWrite for SwitchStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let len = match self.pass_gate(cx, buf.len()) {
            Poll::Ready(len) => len,
            Poll::Pending => return Poll::Pending,
        };
        let buf = &buf[..len];
        let written = self.with(|inner| match inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Inner::Taken => Poll::Ready(Err(taken())),
        });
        if let Poll::Ready(Ok(n)) = written {
            self.passed_gate(n);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|inner| match inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Inner::Taken => Poll::Ready(Err(taken())),
        })
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|inner| match inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Inner::Taken => Poll::Ready(Ok(())),
        })
    }
}

impl std::fmt::Debug for SwitchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.with(|inner| match inner {
            Inner::Plain(_) => "plain",
            Inner::Tls(_) => "tls",
            Inner::Taken => "upgrading",
        });
        write!(f, "SwitchStream({state})")
    }
}

impl AsyncTokioStream for SwitchStream {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.with(|inner| match inner {
            Inner::Plain(s) => s.peer_addr(),
            Inner::Tls(s) => s.get_ref().peer_addr(),
            Inner::Taken => Err(taken()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), server.expect("accept").0)
    }

    #[tokio::test]
    async fn the_commit_gate_lets_the_body_through_and_holds_the_end_until_the_token_is_free() {
        let (client, mut server) = pair().await;
        let (mut stream, switch) = SwitchStream::plain(client);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        let held_elsewhere = lock.clone().lock_owned().await;
        let body = vec![b'x'; 100_000];
        switch.arm_commit_gate(body.len() as u64, lock.clone());
        let writer = tokio::spawn(async move {
            stream.write_all(&body).await.expect("body");
            stream.write_all(b"\r\n.\r\n").await.expect("end");
            stream.flush().await.expect("flush");
            stream
        });
        // The whole body arrives while another message holds the token...
        let mut got = vec![0u8; 100_000];
        server.read_exact(&mut got).await.expect("body arrives");
        let mut more = [0u8; 5];
        let early = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            server.read_exact(&mut more),
        )
        .await;
        assert!(early.is_err(), "the end of DATA passed without the token");
        // ...and its end only once the token is free; the gate then holds it.
        drop(held_elsewhere);
        server.read_exact(&mut more).await.expect("end arrives");
        assert_eq!(&more, b"\r\n.\r\n");
        let _stream = writer.await.expect("writer");
        assert!(
            lock.try_lock().is_err(),
            "the token is held by this message"
        );
        let token = switch.disarm_commit_gate().expect("token taken");
        drop(token);
        assert!(lock.try_lock().is_ok(), "dropping the token frees it");
    }

    #[tokio::test]
    async fn an_unarmed_gate_passes_everything() {
        let (client, mut server) = pair().await;
        let (mut stream, switch) = SwitchStream::plain(client);
        stream.write_all(b"EHLO x\r\n").await.expect("write");
        let mut got = [0u8; 8];
        server.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"EHLO x\r\n");
        assert!(switch.disarm_commit_gate().is_none());
    }
}
