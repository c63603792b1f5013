//! Terminating TLS with rustls (crypto provider `ring`; HTTP/2 and HTTP/1.1 offered by
//! ALPN). The accept loop only accepts: each connection's handshake runs in its own task,
//! bounded by the handshake timeout, so a slow or silent client holds up nobody else.
//! Handshaken connections are handed to axum's server through [`TlsListener`], so HTTPS
//! is served (tracing, metrics, graceful shutdown) exactly as plain HTTP is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Handshaken connections waiting for the server to take them.
const HANDSHAKEN_QUEUE: usize = 64;

/// A certificate chain and its key, ready to terminate TLS, and the handshake timeout.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// TLS 1.2 and 1.3 with rustls' safe defaults, serving `chain` (leaf first) with `key`;
    /// fails if the key does not belong to the leaf or either is unusable.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        handshake_timeout: Duration,
    ) -> Result<ServerTls, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout,
        })
    }
}

/// An axum [`Listener`] yielding connections whose TLS handshake has completed. Dropping it
/// stops its accept task and closes the socket.
pub(super) struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`, setting TCP_NODELAY on every connection.
    pub(super) fn start(listener: TcpListener, tls: ServerTls) -> std::io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (sender, handshaken) = mpsc::channel(HANDSHAKEN_QUEUE);
        tokio::spawn(accept_loop(listener, tls, sender));
        Ok(TlsListener {
            handshaken,
            local_addr,
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accept loop ends only once this receiver is dropped: not reached.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Accepts until the [`TlsListener`] is dropped; one handshake task per connection.
async fn accept_loop(
    mut listener: TcpListener,
    tls: ServerTls,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (mut tcp, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = handshaken.closed() => return,
        };
        super::serve::set_nodelay(&mut tcp);
        tokio::spawn(handshake(tcp, peer, tls.clone(), handshaken.clone()));
    }
}

async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: ServerTls,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    match tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            // Fails only when the server stopped accepting: the connection is dropped.
            let _ = handshaken.send((stream, peer)).await;
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed."),
        Err(_) => tracing::debug!(
            %peer,
            timeout_ms = tls.handshake_timeout.as_millis() as u64,
            "TLS handshake timed out."
        ),
    }
}
