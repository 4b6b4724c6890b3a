//! Short busy-polling on a connection thread after it last answered.
//!
//! A thread that parks in `epoll_wait` as soon as it has answered is woken by the kernel when
//! the client's next request arrives: on a virtual machine that wake-up (an inter-processor
//! interrupt, then the scheduler) costs tens of microseconds, as much as the rest of a
//! prediction outside the model. So for a short window after one of its connections wrote
//! (an answer going out, which is what precedes a client's next request), a connection thread
//! keeps polling its sockets without blocking, and a request that arrives in that window is
//! picked up at once. The same trade the Linux kernel's `busy_poll` and Go's scheduler make.
//!
//! What it costs: an idle server spins not at all, and a busy one always has work. In between,
//! each write buys at most the window of polling ([`DEFAULT_WINDOW_US`] unless `plexe serve
//! --busy-poll-us` says otherwise, at most [`MAX_WINDOW_US`]). Reads do not re-arm it, so a
//! client trickling a request byte by byte does not keep a thread spinning; a client that
//! keeps the server writing (a request flood, or a large answer read in small pieces) does,
//! for as long as it keeps it writing, at up to the window's worth of CPU per write.
//!
//! Each connection thread runs [`spin_while_active`] as its runtime's main future, and each of
//! its connections' streams is wrapped in [`Active`], which records when it last wrote.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a thread keeps polling after its last write by default, in microseconds: longer
/// than a client on the same machine takes to read an answer and send its next request, short
/// enough that a thread serving an occasional request spends little on it.
pub const DEFAULT_WINDOW_US: u64 = 150;
/// The longest window `plexe serve` accepts.
pub const MAX_WINDOW_US: u64 = 1_000;

thread_local! {
    /// When this thread's connections last wrote (`None`: not since the spin ended).
    static LAST_ACTIVE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The parked spinner of this thread, woken by the next activity.
    static PARKED: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// Records a write on this thread and wakes its spinner if it had stopped. Cheap: one clock
/// read (vDSO) and, after an idle spell, one in-runtime wake-up (no system call).
fn touch() {
    LAST_ACTIVE.with(|last| last.set(Some(Instant::now())));
    if let Some(waker) = PARKED.with(Cell::take) {
        waker.wake();
    }
}

/// Whether this thread wrote within `window`; forgets the write once it is older.
fn recently_active(window: Duration) -> bool {
    LAST_ACTIVE.with(|last| match last.get() {
        Some(at) if at.elapsed() < window => true,
        Some(_) => {
            last.set(None);
            false
        }
        None => false,
    })
}

/// Waits until this thread's next write.
fn next_activity() -> impl Future<Output = ()> {
    let mut parked = false;
    poll_fn(move |cx| {
        if parked && LAST_ACTIVE.with(Cell::get).is_some() {
            return Poll::Ready(());
        }
        parked = true;
        PARKED.with(|slot| slot.set(Some(cx.waker().clone())));
        Poll::Pending
    })
}

/// Runs on a connection thread until `stop` resolves: while the thread wrote within `window`,
/// it yields to the runtime, which then polls the sockets without blocking instead of
/// parking; otherwise it waits for the next write and the runtime parks as usual.
pub async fn spin_while_active(window: Duration, stop: impl Future<Output = ()>) {
    if window.is_zero() {
        return stop.await;
    }
    // Nothing of this thread's spinning outlives it (a runtime the thread builds next starts
    // clean).
    struct Forget;
    impl Drop for Forget {
        fn drop(&mut self) {
            PARKED.with(Cell::take);
            LAST_ACTIVE.with(|last| last.set(None));
        }
    }
    let _forget = Forget;
    tokio::pin!(stop);
    loop {
        let turn = async {
            if recently_active(window) {
                // Gives the CPU to any other runnable thread first (on a machine with fewer
                // free cores than busy threads, the client itself may be waiting for this one).
                std::thread::yield_now();
                tokio::task::yield_now().await;
            } else {
                next_activity().await;
            }
        };
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = turn => {}
        }
    }
}

/// A connection's stream that records each write that moved bytes (see the module).
pub struct Active<S> {
    inner: S,
}

impl<S> Active<S> {
    pub fn new(inner: S) -> Active<S> {
        Active { inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Active<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Active<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_parked() -> bool {
        PARKED.with(|slot| {
            let waker = slot.take();
            let parked = waker.is_some();
            slot.set(waker);
            parked
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    }

    #[test]
    fn activity_counts_only_within_the_window() {
        LAST_ACTIVE.with(|last| last.set(None));
        assert!(!recently_active(Duration::from_secs(60)), "no activity yet");
        touch();
        assert!(recently_active(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            !recently_active(Duration::from_millis(1)),
            "older than the window"
        );
        assert!(
            LAST_ACTIVE.with(Cell::get).is_none(),
            "stale activity is forgotten, so the spinner parks"
        );
    }

    /// How often the runtime of a thread whose main future is the spinner parks over `rounds`
    /// one-byte request/answer round trips on loopback, its side writing through [`Active`];
    /// then it is stopped `then_wait` after the last answer (mid-spin or parked).
    fn parks_over_round_trips(window: Duration, rounds: usize, then_wait: Duration) -> usize {
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let parks = Arc::new(AtomicUsize::new(0));
        let counted = parks.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(move || {
                    counted.fetch_add(1, Ordering::Relaxed);
                })
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                tokio::spawn(async move {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let mut stream = Active::new(stream);
                    let mut byte = [0u8; 1];
                    while let Ok(1) = stream.read(&mut byte).await {
                        if stream.write_all(&byte).await.is_err() {
                            return;
                        }
                    }
                });
                spin_while_active(window, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        let mut client = std::net::TcpStream::connect(addr).expect("connecting");
        client.set_nodelay(true).expect("nodelay");
        let mut round_trip = |n: u8| {
            client.write_all(&[n]).expect("sending");
            let mut answer = [0u8; 1];
            client.read_exact(&mut answer).expect("the answer");
            assert_eq!(answer[0], n);
        };
        for n in 0..10 {
            round_trip(n);
        }
        let before = parks.load(Ordering::Relaxed);
        for n in 0..rounds {
            round_trip(n as u8);
        }
        let parked = parks.load(Ordering::Relaxed) - before;
        std::thread::sleep(then_wait);
        let _ = stop.send(());
        server.join().expect("the server thread ends when stopped");
        parked
    }

    /// Within the window the thread picks the next request up without parking; with no window
    /// it parks between requests; it ends when stopped, spinning or parked.
    #[test]
    fn a_thread_that_just_answered_polls_instead_of_parking() {
        let rounds = 200;
        // A window far longer than a loopback round trip, so a busy test machine does not turn
        // the client's pauses into parks.
        let spinning = parks_over_round_trips(Duration::from_millis(5), rounds, Duration::ZERO);
        assert!(
            spinning <= rounds / 4,
            "{spinning} parks in {rounds} round trips"
        );
        let parking = parks_over_round_trips(Duration::ZERO, rounds, Duration::ZERO);
        assert!(
            parking >= rounds / 2,
            "{parking} parks in {rounds} round trips"
        );
        // Stopped after the window has passed: parked.
        parks_over_round_trips(Duration::from_micros(100), 5, Duration::from_millis(20));
    }

    #[test]
    fn reads_do_not_rearm_the_window() {
        runtime().block_on(async {
            LAST_ACTIVE.with(|last| last.set(None));
            let (mut near, far) = tokio::io::duplex(64);
            let mut far = Active::new(far);
            tokio::io::AsyncWriteExt::write_all(&mut near, b"request")
                .await
                .expect("writing");
            let mut buf = [0u8; 7];
            tokio::io::AsyncReadExt::read_exact(&mut far, &mut buf)
                .await
                .expect("reading");
            assert!(
                !recently_active(Duration::from_secs(60)),
                "a read does not count"
            );
            tokio::io::AsyncWriteExt::write_all(&mut far, b"answer")
                .await
                .expect("writing");
            assert!(recently_active(Duration::from_secs(60)), "a write does");
        });
    }

    #[test]
    fn a_zero_window_never_spins() {
        runtime().block_on(async {
            touch();
            tokio::time::timeout(
                Duration::from_secs(5),
                spin_while_active(Duration::ZERO, std::future::ready(())),
            )
            .await
            .expect("returns as soon as stopped");
            assert!(!is_parked());
        });
    }
}
