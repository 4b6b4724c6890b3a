//! Short busy-polling on a connection thread after its sockets were last active.
//!
//! A thread that parks in `epoll_wait` as soon as it has answered is woken by the kernel when
//! the client's next request arrives: on a virtual machine that wake-up (an inter-processor
//! interrupt, then the scheduler) costs tens of microseconds, as much as the rest of a
//! prediction outside the model. So for a short window ([`SPIN_WINDOW`]) after a read or a write on one of its
//! connections, a connection thread keeps polling its sockets without blocking, and a request
//! that arrives in that window is picked up at once. The same trade the Linux kernel's
//! `busy_poll` and Go's scheduler make: the spin is bounded by the window, so an idle server
//! burns nothing and a steady trickle of requests costs at most the window per request; under
//! load the thread always has work and never spins.
//!
//! Each connection thread runs [`spin_while_active`] as its runtime's main future, and each of
//! its connections' streams is wrapped in [`Active`], which records when it last moved bytes.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a thread keeps polling after its last socket activity by default: longer than a
/// client on the same machine takes to read an answer and send its next request, short enough
/// that a thread serving an occasional request spends little on it.
pub const SPIN_WINDOW: Duration = Duration::from_micros(150);

thread_local! {
    /// When this thread's connections last moved bytes (`None`: not since the spin ended).
    static LAST_ACTIVE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The parked spinner of this thread, woken by the next activity.
    static PARKED: Cell<Option<Waker>> = const { Cell::new(None) };
}

/// Records activity on this thread and wakes its spinner if it had stopped. Cheap: one clock
/// read (vDSO) and, after an idle spell, one in-runtime wake-up (no system call).
fn touch() {
    LAST_ACTIVE.with(|last| last.set(Some(Instant::now())));
    if let Some(waker) = PARKED.with(Cell::take) {
        waker.wake();
    }
}

/// Whether this thread was active within `window`; forgets activity once it is older.
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

/// Waits until this thread's next socket activity.
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

/// Runs on a connection thread until `stop` resolves: while the thread's sockets were active
/// within `window` ([`SPIN_WINDOW`] by default), it yields to the runtime, which then polls the sockets without
/// blocking instead of parking; otherwise it waits for the next activity and the runtime
/// parks as usual.
pub async fn spin_while_active(window: Duration, stop: impl Future<Output = ()>) {
    if window.is_zero() {
        return stop.await;
    }
    tokio::pin!(stop);
    loop {
        let turn = async {
            if recently_active(window) {
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

/// A connection's stream that records each read and write that moved bytes (see the module).
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
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            touch();
        }
        polled
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
        assert!(!recently_active(SPIN_WINDOW), "no activity yet");
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

    /// The spinner parks when idle, is woken by activity, spins, parks again once the window
    /// has passed, and ends when told to, in each of these states.
    #[test]
    fn the_spinner_parks_when_idle_and_stops_when_told() {
        runtime().block_on(async {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let spinner = tokio::spawn(spin_while_active(Duration::from_millis(5), async {
                let _ = stopped.await;
            }));
            tokio::task::yield_now().await;
            assert!(is_parked(), "an idle spinner waits for activity");
            touch();
            tokio::task::yield_now().await;
            assert!(!is_parked(), "activity wakes it");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(is_parked(), "it parks again after the window");
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(5), spinner)
                .await
                .expect("the spinner ends when stopped")
                .expect("the spinner does not panic");
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
