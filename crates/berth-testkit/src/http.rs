//! Plumbing shared by the in-process servers (token issuer, proxy) and the clients tests use.
//!
//! Servers run on their own thread with their own tokio runtime so that they work the same whether a
//! test is synchronous or async, and so that a shared fixture outlives any one test's runtime.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

use crate::Pki;

/// Response body of the in-process servers.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) type Handler =
    Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A server on its own thread; stops (and joins the thread) when dropped.
#[derive(Debug)]
pub(crate) struct ServerThread {
    pub(crate) port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Binds 127.0.0.1:0 and serves HTTP/1.1 and HTTP/2 (over TLS when `tls` is given) with `handler`.
    pub(crate) fn start(
        name: &str,
        tls: Option<rustls::ServerConfig>,
        handler: Handler,
    ) -> anyhow::Result<ServerThread> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let port = listener.local_addr().context("local address")?.port();
        listener.set_nonblocking(true).context("non-blocking listener")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a tokio runtime")?;
        let acceptor = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-{name}"))
            .spawn(move || runtime.block_on(serve(listener, acceptor, handler, stopped)))
            .context("spawning a server thread")?;
        Ok(ServerThread { port, shutdown: Some(shutdown), thread: Some(thread) })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    handler: Handler,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(handler(request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    // A failed handshake (e.g. a client that does not trust the CA) just ends the connection.
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

/// A reqwest client builder trusting only the test CA, optionally presenting the alice client pair.
pub fn reqwest_builder(pki: &Pki, with_client_cert: bool) -> anyhow::Result<reqwest::ClientBuilder> {
    let tls = pki.client_tls_config(with_client_cert)?;
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls).connect_timeout(Duration::from_secs(10)))
}

/// A reqwest client trusting the test CA (and presenting the client pair for mTLS when asked).
/// Panics with the reason when the PKI files cannot be loaded: it is a test fixture.
pub fn reqwest_client(pki: &Pki, with_client_cert: bool) -> reqwest::Client {
    match reqwest_builder(pki, with_client_cert).and_then(|builder| Ok(builder.build()?)) {
        Ok(client) => client,
        Err(error) => {
            panic!("berth-testkit: cannot build a reqwest client from {}: {error:#}", pki.dir.display())
        }
    }
}

/// A blocking `GET /v2/` returning the HTTP status, over TLS (trusting the test CA, with the client pair)
/// when `tls`. Used for readiness checks, which must not need an async runtime.
pub(crate) fn probe_v2(port: u16, tls: Option<&Pki>) -> anyhow::Result<u16> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).context("connecting")?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).context("read timeout")?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).context("write timeout")?;
    let request = format!("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut head = Vec::new();
    match tls {
        None => {
            let mut stream = stream;
            stream.write_all(request.as_bytes()).context("writing the probe")?;
            read_head(&mut stream, &mut head)?;
        }
        Some(pki) => {
            let mut config = pki.client_tls_config(true)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let server_name = rustls_pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
            let connection =
                rustls::ClientConnection::new(Arc::new(config), server_name).context("TLS client")?;
            let mut stream = rustls::StreamOwned::new(connection, stream);
            stream.write_all(request.as_bytes()).context("writing the probe")?;
            read_head(&mut stream, &mut head)?;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.split_whitespace().nth(1).and_then(|status| status.parse().ok());
    status.with_context(|| format!("not an HTTP status line: {line:?}"))
}

/// Reads until the end of the status line (bounded to 4 KiB).
fn read_head(stream: &mut impl Read, head: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut buffer = [0u8; 512];
    while !head.windows(2).any(|window| window == b"\r\n") && head.len() < 4096 {
        let read = stream.read(&mut buffer).context("reading the probe answer")?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(())
}
