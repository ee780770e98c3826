//! Group commit: sends that arrive together are persisted in one transaction.
//!
//! Each writer task takes whatever is queued (up to `max_batch`), commits it with
//! `Store::commit_messages`, and answers every sender. Under light load a batch is one
//! message and nothing waits; under heavy load the cost of a transaction (an fsync on
//! SQLite, a round trip on PostgreSQL) is shared by the whole batch.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{CommitOutcome, NewMessage, Store, StoreError};

type Reply = oneshot::Sender<Result<CommitOutcome, StoreError>>;

pub(crate) struct Writer {
    tx: mpsc::Sender<(NewMessage, Reply)>,
}

impl Writer {
    /// Starts `tasks` writer tasks sharing one queue. SQLite wants one (it has one writer
    /// anyway); PostgreSQL gains from a few.
    pub(crate) fn start(store: Arc<dyn Store>, tasks: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel::<(NewMessage, Reply)>(max_batch * 8);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..tasks.max(1) {
            let store = store.clone();
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(max_batch);
                loop {
                    {
                        let mut rx = rx.lock().await;
                        if rx.recv_many(&mut batch, max_batch).await == 0 {
                            return; // every sender is gone: shutting down
                        }
                    }
                    commit(&*store, std::mem::take(&mut batch)).await;
                }
            });
        }
        Self { tx }
    }

    pub(crate) async fn commit(&self, msg: NewMessage) -> Result<CommitOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((msg, reply))
            .await
            .map_err(|_| StoreError::Unavailable("message writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("message writer stopped".into()))?
    }
}

async fn commit(store: &dyn Store, batch: Vec<(NewMessage, Reply)>) {
    let (msgs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    metrics::histogram!("tern_commit_batch_size").record(msgs.len() as f64);
    let started = std::time::Instant::now();
    let committed = store.commit_messages(&msgs).await;
    metrics::histogram!("tern_commit_seconds").record(started.elapsed().as_secs_f64());
    match committed {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if msgs.len() > 1 => {
            // One bad message must not fail its neighbours: retry each alone.
            tracing::warn!(error = %e, size = msgs.len(), "batch commit failed; retrying one by one");
            for (m, reply) in msgs.into_iter().zip(replies) {
                let r = store.commit_messages(std::slice::from_ref(&m)).await.and_then(|mut v| {
                    v.pop()
                        .ok_or_else(|| StoreError::Database("commit returned no outcome".into()))
                });
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(clone_err(&e)));
            }
        }
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::NotFound(w) => StoreError::NotFound(w),
        StoreError::Rejected(m) => StoreError::Rejected(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Database(m) => StoreError::Database(m.clone()),
    }
}
