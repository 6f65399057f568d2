//! The HTTP/1.1 server (hyper 1 on its own tokio runtime and thread).

use std::future::Future as _;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::PendingUpload;
use crate::core::{Config, Emulator, Route, classify};
use crate::faults::{FaultRule, HttpFault};
use crate::store::ContentReader;

/// Largest JSON request body read into memory.
const MAX_JSON_BODY: usize = 64 << 20;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

type Shared = Arc<Mutex<Emulator>>;

fn lock(s: &Shared) -> MutexGuard<'_, Emulator> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Options for [`Server`]: address, account configuration, data directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerBuilder {
    /// Address to listen on; `127.0.0.1:0` picks a free loopback port.
    pub addr: SocketAddr,
    /// The emulated account.
    pub config: Config,
    /// Persist contents and metadata here (`None`: memory only).
    pub data_dir: Option<PathBuf>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: Config::default(),
            data_dir: None,
        }
    }
}

impl ServerBuilder {
    /// Listens on this address instead of `127.0.0.1:0`.
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Uses this account configuration.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Persists contents and metadata in `dir`.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Binds the address and starts serving on a thread of its own.
    ///
    /// # Errors
    ///
    /// An I/O error binding the address, opening the data directory or starting the runtime.
    pub fn start(self) -> io::Result<Server> {
        let listener = StdListener::bind(self.addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        // Clients cannot connect to 0.0.0.0 / [::]: advertise loopback for them.
        let addr = if bound.ip().is_unspecified() {
            let ip: std::net::IpAddr = if bound.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(ip, bound.port())
        } else {
            bound
        };
        let url = format!("http://{addr}");
        let config = self.config.with_base_url(url.clone());
        let emu = match &self.data_dir {
            Some(dir) => Emulator::open(config, dir)?,
            None => Emulator::new(config),
        };
        let shared: Shared = Arc::new(Mutex::new(emu));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("b2-emulator")
            .enable_all()
            .build()?;
        let (tx, rx) = oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("b2-emulator-accept".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, serving, rx));
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(Server {
            addr,
            url,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

async fn accept_loop(listener: StdListener, shared: Shared, mut stop: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, Arc::clone(&shared)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .max_buf_size(4 << 20)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

/// A running emulator serving HTTP on loopback. Stops when dropped.
///
/// Usable from synchronous tests and from any async runtime: it owns its thread and tokio
/// runtime.
///
/// ```
/// let server = b2_emulator::Server::start().unwrap();
/// // Point a client at server.url() with server.key_id() / server.application_key().
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    url: String,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts an in-memory emulator on `127.0.0.1` with a free port and the default account.
    ///
    /// # Errors
    ///
    /// An I/O error binding the port or starting the runtime.
    pub fn start() -> io::Result<Self> {
        ServerBuilder::default().start()
    }

    /// Options for a server with another address, account or a data directory.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`: the realm for `b2_authorize_account`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The master application key id.
    pub fn key_id(&self) -> String {
        lock(&self.shared).key_id().to_owned()
    }

    /// The master application key.
    pub fn application_key(&self) -> String {
        lock(&self.shared).application_key().to_owned()
    }

    /// The account id.
    pub fn account_id(&self) -> String {
        lock(&self.shared).account_id().to_owned()
    }

    /// Runs `f` with the emulator locked (to inspect or change its state).
    pub fn with_emulator<T>(&self, f: impl FnOnce(&mut Emulator) -> T) -> T {
        f(&mut lock(&self.shared))
    }

    /// How many requests each call received so far, by call name.
    pub fn call_counts(&self) -> std::collections::BTreeMap<String, u64> {
        lock(&self.shared).call_counts().clone()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.shared).add_fault(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared).clear_faults();
    }

    /// Moves the emulator's clock forward (tokens expire, retention ends, lifecycle rules act on
    /// the next request).
    pub fn advance_clock(&self, by: Duration) {
        lock(&self.shared).advance_clock(u64::try_from(by.as_millis()).unwrap_or(u64::MAX));
    }

    /// Expires every account authorization token.
    pub fn expire_account_tokens(&self) {
        lock(&self.shared).expire_account_tokens();
    }

    /// Blocks until the server stops (it stops only when dropped from another thread, or
    /// when the process ends).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response body: bytes in memory, or content streamed from storage.
#[derive(Debug)]
pub(crate) enum RespBody {
    Full(Option<Bytes>),
    Stream {
        reader: ContentReader,
        /// Bytes left before the body is cut short (`None`: send everything).
        cut_after: Option<u64>,
        /// Cut by an error (reset) rather than a clean end (truncation).
        reset: bool,
        /// A pause before the cut, so the bytes sent so far leave the server first.
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut *self {
            Self::Full(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Self::Stream {
                reader,
                cut_after,
                reset,
                pause,
            } => {
                if *cut_after == Some(0) {
                    let sleep = pause.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep(Duration::from_millis(50)))
                    });
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *cut_after = None;
                    return Poll::Ready(if *reset {
                        Some(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "injected reset",
                        )))
                    } else {
                        Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "injected truncation",
                        )))
                    });
                }
                match reader.next_chunk() {
                    Ok(Some(mut chunk)) => {
                        if let Some(left) = cut_after.as_mut() {
                            let n = usize::try_from(*left)
                                .unwrap_or(usize::MAX)
                                .min(chunk.len());
                            chunk.truncate(n);
                            *left -= n as u64;
                        }
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Ok(None) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Stream {
                reader,
                cut_after: None,
                ..
            } => SizeHint::with_exact(reader.remaining()),
            Self::Stream { .. } => SizeHint::default(),
        }
    }
}

fn full(r: Response<Bytes>) -> Response<RespBody> {
    r.map(|b| RespBody::Full(Some(b)))
}

/// Applies a response-side fault to a buffered response.
fn with_fault(r: Response<Bytes>, fault: Option<HttpFault>) -> Response<RespBody> {
    match fault {
        Some(HttpFault::ResetResponseBody | HttpFault::TruncateResponse) => {
            let reset = fault == Some(HttpFault::ResetResponseBody);
            let (mut parts, body) = r.into_parts();
            let half = body.len() as u64 / 2;
            parts.headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(body.len()),
            );
            let reader = ContentReader::from_bytes(body);
            Response::from_parts(
                parts,
                RespBody::Stream {
                    reader,
                    cut_after: Some(half),
                    reset,
                    pause: None,
                },
            )
        }
        _ => full(r),
    }
}

async fn delay(fault: Option<HttpFault>) {
    if let Some(HttpFault::Delay(ms)) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Upload bodies up to this size are hashed and stored on the connection's own task.
const INLINE_BODY: u64 = 256 * 1024;

/// Where an upload's body goes as it arrives.
enum BodySink {
    /// Written at once, on this task; the first write error is kept.
    Inline(Box<PendingUpload>, Option<io::Error>),
    /// Sent to a blocking thread that hashes and stores it.
    Worker(
        tokio::sync::mpsc::Sender<Bytes>,
        tokio::task::JoinHandle<(PendingUpload, Option<io::Error>)>,
    ),
}

impl BodySink {
    /// Takes the next chunk; false when no more should be sent.
    async fn take(&mut self, data: Bytes) -> bool {
        match self {
            Self::Inline(up, error) => match up.write_bytes(data) {
                Ok(()) => true,
                Err(e) => {
                    *error = Some(e);
                    false
                }
            },
            Self::Worker(tx, _) => tx.send(data).await.is_ok(),
        }
    }

    /// The upload back, with the first write error if there was one.
    async fn finish(self) -> io::Result<(PendingUpload, Option<io::Error>)> {
        match self {
            Self::Inline(up, error) => Ok((*up, error)),
            Self::Worker(tx, worker) => {
                drop(tx);
                worker.await.map_err(io::Error::other)
            }
        }
    }
}

async fn handle(req: Request<Incoming>, shared: Shared) -> Result<Response<RespBody>, io::Error> {
    let (head, mut body) = req.into_parts();
    match classify(head.uri.path()) {
        Route::Upload => {
            let begun = lock(&shared).begin_upload(&head, now_ms());
            let up = match begun {
                Ok(up) => up,
                Err(r) => return Ok(full(*r)),
            };
            let fault = up.fault();
            delay(fault).await;
            let reset_at =
                (fault == Some(HttpFault::ResetRequestBody)).then(|| up.expected_len() / 2);
            // Hashing and storing run on a blocking thread while this task reads the socket,
            // except for small bodies, where the hand-off would cost more than the work.
            let mut sink = if up.expected_len() <= INLINE_BODY {
                BodySink::Inline(Box::new(up), None)
            } else {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
                let worker = tokio::task::spawn_blocking(move || {
                    let mut up = up;
                    while let Some(chunk) = rx.blocking_recv() {
                        if let Err(e) = up.write_bytes(chunk) {
                            return (up, Some(e));
                        }
                    }
                    (up, None)
                });
                BodySink::Worker(tx, worker)
            };
            let mut received = 0u64;
            let mut broken = None;
            loop {
                if reset_at.is_some_and(|at| received >= at) {
                    broken = Some(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "injected reset",
                    ));
                    break;
                }
                match body.frame().await {
                    None => break,
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            received += data.len() as u64;
                            if !sink.take(data).await {
                                break;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        broken = Some(io::Error::other(e));
                        break;
                    }
                }
            }
            let (up, write_error) = sink.finish().await?;
            if let Some(e) = broken {
                lock(&shared).abort_upload(up);
                return Err(e);
            }
            if let Some(e) = write_error {
                lock(&shared).abort_upload(up);
                let r = crate::core::bad_request(format!("upload failed: {e}"));
                return Ok(full(r.into_response(false)));
            }
            let r = lock(&shared).finish_upload(up, now_ms());
            Ok(with_fault(r, fault))
        }
        Route::Download if head.method != http::Method::POST => {
            let begun = lock(&shared).begin_download(&head, now_ms());
            match begun {
                Err(r) => Ok(full(*r)),
                Ok(d) => {
                    let fault = d.fault();
                    delay(fault).await;
                    let (parts, reader) = d.into_parts();
                    let cut = match fault {
                        Some(HttpFault::ResetResponseBody | HttpFault::TruncateResponse) => {
                            Some(reader.remaining() / 2)
                        }
                        _ => None,
                    };
                    Ok(Response::from_parts(
                        parts,
                        RespBody::Stream {
                            reader,
                            cut_after: cut,
                            reset: fault == Some(HttpFault::ResetResponseBody),
                            pause: None,
                        },
                    ))
                }
            }
        }
        Route::Call | Route::Download => {
            let limited = http_body_util::Limited::new(body, MAX_JSON_BODY);
            let bytes = match limited.collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    let mut r = crate::core::bad_request("request body too large or broken")
                        .into_response(false);
                    *r.status_mut() = StatusCode::BAD_REQUEST;
                    return Ok(full(r));
                }
            };
            let r = lock(&shared).handle_call(&head, &bytes, now_ms());
            let fault = r.extensions().get::<HttpFault>().copied();
            delay(fault).await;
            if fault == Some(HttpFault::ResetRequestBody) {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "injected reset",
                ));
            }
            Ok(with_fault(r, fault))
        }
    }
}
