//! What other tasks hand to one session: frames to write and a reason to close; and what
//! the session tells them back: when it last heard from its client.
//!
//! One small allocation per session holds all of it. The queue is a `VecDeque` that owns
//! no memory while empty (an idle session costs a few dozen bytes here), is bounded (a
//! push past the bound closes the session as a slow consumer instead of growing), and is
//! given back to the allocator once a burst has been written. Routing pushes with
//! `push` (never waits), the session takes frames in batches with `take`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::close::{codes, Closing};
use crate::codec::SharedFrame;

/// A queue drained back to empty keeps at most this many slots of capacity.
const KEEP_CAPACITY: usize = 8;

pub(crate) struct Outbound {
    state: Mutex<State>,
    /// Wakes the session: a frame was queued or a close was asked for.
    wake: Notify,
    /// When the client was last heard from, in the gateway's clock (milliseconds since it
    /// started); the heartbeat sweep closes sessions silent for too long.
    last_heard_ms: AtomicU64,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Arc<SharedFrame>>,
    /// The first reason given wins; once set, nothing more is queued.
    closing: Option<Closing>,
}

/// What the session should do next.
pub(crate) enum Next {
    /// Write these frames (possibly none: a spurious wake-up).
    Write,
    /// Write the closing frame and close.
    Close(Closing),
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The queue was full: the session is now closing as a slow consumer.
    Overflowed,
    /// The session is closing already; the frame was dropped (it syncs on reconnect).
    Dropped,
}

impl Outbound {
    pub fn new(now_ms: u64) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            last_heard_ms: AtomicU64::new(now_ms),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every operation leaves the state consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame unless `limit` frames are waiting already, in which case the
    /// session is closed as a slow consumer and the frame dropped.
    #[cfg(test)]
    pub fn push(&self, frame: &Arc<SharedFrame>, limit: usize) -> Pushed {
        self.push_all(std::slice::from_ref(frame), limit)
    }

    /// Queues several frames at once, in order, with one wake-up, so that the session
    /// finds them all when it runs and writes them together; past `limit` waiting frames
    /// the session is closed as a slow consumer and none of them is queued.
    pub fn push_all(&self, frames: &[Arc<SharedFrame>], limit: usize) -> Pushed {
        let mut st = self.lock();
        if st.closing.is_some() {
            return Pushed::Dropped;
        }
        let pushed = if st.frames.len() + frames.len() > limit {
            st.closing = Some(Closing::error(
                codes::SLOW_CONSUMER,
                "slow_consumer",
                "the connection did not read its frames fast enough; reconnect and sync",
            ));
            st.frames = VecDeque::new();
            Pushed::Overflowed
        } else {
            st.frames.extend(frames.iter().cloned());
            Pushed::Queued
        };
        drop(st);
        self.wake.notify_one();
        pushed
    }

    /// Asks the session to close with this reason (the first reason given wins).
    pub fn close(&self, closing: Closing) {
        let mut st = self.lock();
        if st.closing.is_none() {
            st.closing = Some(closing);
            st.frames = VecDeque::new();
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Whether a close was asked for.
    pub fn is_closing(&self) -> bool {
        self.lock().closing.is_some()
    }

    /// Waits until something was pushed or a close asked for since the last `take`.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Moves up to `max` queued frames into `batch`, or says to close. When frames are
    /// left over, the session is woken again so that it comes back for them.
    pub fn take(&self, batch: &mut Vec<Arc<SharedFrame>>, max: usize) -> Next {
        let mut st = self.lock();
        if let Some(c) = &st.closing {
            return Next::Close(c.clone());
        }
        let n = st.frames.len().min(max);
        batch.extend(st.frames.drain(..n));
        if st.frames.is_empty() {
            if st.frames.capacity() > KEEP_CAPACITY {
                st.frames = VecDeque::new();
            }
        } else {
            drop(st);
            self.wake.notify_one();
        }
        Next::Write
    }

    pub fn heard(&self, now_ms: u64) {
        self.last_heard_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_heard_ms(&self) -> u64 {
        self.last_heard_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tern_platform::proto::v1 as pb;

    fn frame(i: usize) -> Arc<SharedFrame> {
        Arc::new(SharedFrame::new(pb::ServerFrame {
            id: format!("f{i}"),
            body: None,
        }))
    }

    #[test]
    fn frames_come_out_in_order_in_batches() {
        let out = Outbound::new(0);
        for i in 0..5 {
            assert_eq!(out.push(&frame(i), 10), Pushed::Queued);
        }
        let mut batch = Vec::new();
        assert!(matches!(out.take(&mut batch, 3), Next::Write));
        assert!(matches!(out.take(&mut batch, 3), Next::Write));
        let ids: Vec<String> = batch.iter().map(|f| f.frame().id.clone()).collect();
        assert_eq!(ids, ["f0", "f1", "f2", "f3", "f4"]);
    }

    #[test]
    fn a_full_queue_closes_as_slow_consumer_and_drops_the_rest() {
        let out = Outbound::new(0);
        for i in 0..3 {
            assert_eq!(out.push(&frame(i), 3), Pushed::Queued);
        }
        assert_eq!(out.push(&frame(3), 3), Pushed::Overflowed);
        assert_eq!(out.push(&frame(4), 3), Pushed::Dropped);
        let mut batch = Vec::new();
        match out.take(&mut batch, 10) {
            Next::Close(c) => assert_eq!((c.code.as_str(), c.close_code), ("slow_consumer", codes::SLOW_CONSUMER)),
            Next::Write => panic!("an overflowed session must close"),
        }
        assert!(batch.is_empty(), "nothing is written after the overflow");
    }

    #[test]
    fn several_frames_go_in_together_or_not_at_all() {
        let out = Outbound::new(0);
        assert_eq!(out.push_all(&[frame(0), frame(1)], 3), Pushed::Queued);
        let mut batch = Vec::new();
        assert!(matches!(out.take(&mut batch, 10), Next::Write));
        assert_eq!(batch.len(), 2);
        assert_eq!(out.push(&frame(2), 3), Pushed::Queued);
        assert_eq!(out.push(&frame(3), 3), Pushed::Queued);
        // Two more would make four waiting, past the limit of three: none of them is queued.
        assert_eq!(out.push_all(&[frame(4), frame(5)], 3), Pushed::Overflowed);
        let mut batch = Vec::new();
        assert!(matches!(out.take(&mut batch, 10), Next::Close(_)));
        assert!(batch.is_empty());
    }

    #[test]
    fn the_first_close_reason_wins() {
        let out = Outbound::new(0);
        out.close(Closing::kicked(codes::KICKED, "kicked", "first"));
        out.close(Closing::error(codes::HEARTBEAT_TIMEOUT, "heartbeat_timeout", "second"));
        assert!(out.is_closing());
        let mut batch = Vec::new();
        match out.take(&mut batch, 10) {
            Next::Close(c) => assert_eq!(c.reason, "first"),
            Next::Write => panic!("closing"),
        }
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let out = Outbound::new(0);
        for i in 0..100 {
            out.push(&frame(i), 256);
        }
        let mut batch = Vec::new();
        while batch.len() < 100 {
            out.take(&mut batch, 16);
        }
        assert!(out.lock().frames.capacity() <= KEEP_CAPACITY);
    }

    #[tokio::test]
    async fn a_push_wakes_the_session_even_before_it_waits() {
        let out = Outbound::new(0);
        out.push(&frame(0), 10);
        // The permit is kept until the session waits.
        tokio::time::timeout(std::time::Duration::from_secs(5), out.woken())
            .await
            .unwrap();
    }
}
