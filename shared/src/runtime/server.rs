//! The local server's accept loop (`plexe serve`): the app over HTTP/1.1, or HTTPS with rustls,
//! held to bounds a careless or hostile client cannot stretch:
//!
//! - a client has [`ServerLimits::header_timeout`] to send a request's headers, counted from
//!   when the server starts waiting for them, so an idle keep-alive connection and a half-sent
//!   request are both closed after it (and a TLS handshake has as long);
//! - a request body that sends nothing for [`ServerLimits::body_idle_timeout`] fails (the
//!   route answers 400 and the connection closes), so a client that declares a body and stalls
//!   cannot hold a connection; a slow but moving upload is not cut;
//! - at most [`ServerLimits::max_connections`] connections are open at once; beyond that new
//!   ones wait in the kernel's accept queue;
//! - on shutdown no new connection is accepted, connections finish the request they are in and
//!   close, and whatever is still open after [`ServerLimits::shutdown_grace`] is dropped, so a
//!   slow client cannot hold the process.
//!
//! On AWS, API Gateway plays this part (and terminates TLS).

use super::busy_poll;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// What one client may take of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// How long a connection thread polls without sleeping after its sockets were last active
    /// ([`busy_poll`]; zero: never).
    pub busy_poll: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
            busy_poll: Duration::from_micros(busy_poll::DEFAULT_WINDOW_US),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor for the PEM certificate chain and private key at these paths (HTTP/1.1 over
/// TLS 1.2 or 1.3, with the aws-lc-rs provider).
pub fn tls_acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Read {
            path: path.clone(),
            source,
        }
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(read(cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read(cert_path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(read(key_path))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A request body that fails when no data arrives for `idle`. Unlike tower-http's
/// `TimeoutBody`, which arms a fresh timer before every read, the timer is armed only when a
/// read has to wait: a body that has already arrived (nearly every prediction) registers no
/// timer, and each timer registered can wake the runtime's parked timer thread.
struct IdleTimeoutBody {
    inner: axum::body::Body,
    idle: Duration,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl IdleTimeoutBody {
    fn new(idle: Duration, inner: axum::body::Body) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            timer: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no request data arrived for {0:?}")]
struct BodyIdle(Duration);

impl hyper::body::Body for IdleTimeoutBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            this.timer = None;
            return Poll::Ready(frame);
        }
        let idle = this.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyIdle(idle)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The threads connections are served on: one per core the process may use, each running a
/// single-threaded runtime, with accepted connections dealt to them in turn. A connection,
/// and every request on it, stays on its thread. On tokio's work-stealing runtime a request
/// with a body woke its own connection task while it ran (hyper's body channel), and the
/// rescheduled task woke a second, idle worker to steal it: at one connection that worker
/// bounced through the kernel on every prediction, taking the core the client needed. Uploads
/// are parsed and models trained on a blocking pool, and SQLite has its own thread, so they do
/// not hold up a thread's other connections; what a handler computes inline does (reading and
/// writing a batch's JSON or CSV: up to some tens of milliseconds for 10,000 rows), as on any
/// thread-per-core server.
struct ConnectionThreads {
    runtimes: Vec<tokio::runtime::Handle>,
    next: usize,
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnectionThreads {
    fn start(busy_poll: Duration) -> std::io::Result<ConnectionThreads> {
        let count = std::thread::available_parallelism().map_or(1, usize::from);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut runtimes = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let mut stopped = stopped.clone();
            let (started, runtime) = std::sync::mpsc::sync_channel(1);
            // The runtime is built on its own thread (and only ever dropped there): a runtime
            // dropped inside this async context would panic.
            let thread = std::thread::Builder::new()
                .name(format!("plexe-http-{n}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = started.send(Err(e));
                            return;
                        }
                    };
                    let _ = started.send(Ok(runtime.handle().clone()));
                    runtime.block_on(busy_poll::spin_while_active(busy_poll, async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    }));
                    // Whatever a dropped connection left running gets the same short grace as
                    // the process's own runtime.
                    runtime.shutdown_timeout(Duration::from_millis(500));
                })?;
            let handle = runtime.recv().map_err(|_| {
                std::io::Error::other("a connection thread ended before its runtime started")
            })??;
            runtimes.push(handle);
            threads.push(thread);
        }
        Ok(ConnectionThreads {
            runtimes,
            next: 0,
            stop,
            threads,
        })
    }

    /// Serves `stream` with `serve` on the next thread. The stream moves to that thread's
    /// runtime (its I/O registered there).
    fn spawn<F, Fut>(&mut self, stream: tokio::net::TcpStream, serve: F)
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let runtime = &self.runtimes[self.next % self.runtimes.len()];
        self.next = self.next.wrapping_add(1);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "could not hand a connection to its thread");
                return;
            }
        };
        runtime.spawn(async move {
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(e) => tracing::debug!(error = %e, "could not take a connection on its thread"),
            }
        });
    }

    /// Stops every thread (connections still open on them are dropped) and waits for them.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains as the module says.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let idle = limits.body_idle_timeout;
    let app = app.layer(axum::middleware::map_request(
        move |req: axum::extract::Request| async move {
            req.map(|body| axum::body::Body::new(IdleTimeoutBody::new(idle, body)))
        },
    ));
    let service = TowerToHyperService::new(app);
    let mut threads = match ConnectionThreads::start(limits.busy_poll) {
        Ok(threads) => threads,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the connection threads; not serving");
            return;
        }
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let http = http.clone();
        match &tls {
            None => {
                let watcher = graceful.watcher();
                threads.spawn(stream, move |stream| async move {
                    let stream = TokioIo::new(busy_poll::Active::new(stream));
                    let connection = http.serve_connection(stream, service);
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            Some(tls) => {
                let tls = tls.clone();
                let watcher = graceful.watcher();
                threads.spawn(stream, move |stream| async move {
                    let handshake = tokio::time::timeout(
                        limits.header_timeout,
                        tls.accept(busy_poll::Active::new(stream)),
                    );
                    let stream = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    tracing::info!("no longer accepting connections; draining");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = limits.shutdown_grace.as_secs(),
            "connections still open after the grace period are dropped"
        );
    }
    threads.stop().await;
}
