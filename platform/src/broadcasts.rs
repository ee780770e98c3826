//! Broadcasts: one notification to every user of an app or to a list of users, as a
//! durable job that a worker runs in batches (docs/broadcasts.md).
//!
//! Each user's notification is a system message in their `s:<user>` conversation, keyed by
//! the job (`client_msg_id` derived from the job's key and the user): stored for offline
//! users, found by their next sync, and pushed at once to online ones as a `notification`
//! carrying its conversation id and seq, so a client that sees both shows it once.
//!
//! A batch stores its users' notifications in one transaction, then records its progress
//! (cursor and counts) in another, holding the job's lease. A worker that dies between the
//! two leaves the job to the next worker when the lease ends, which runs the batch again:
//! the notifications are found stored (nothing doubled) and the counts are recorded once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{BusEvent, Push, Target};
use crate::context::Ctx;
use crate::delivery::{DeliveryError, Pipeline};
use crate::domain::*;
use crate::ids::{ClientMsgId, ConversationId, MsgId, UserId};
use crate::store::{CommitOutcome, NewMessage};
use crate::webhook;

/// What the app asks for.
#[derive(Debug, Clone)]
pub struct StartBroadcast {
    pub msg_type: MessageType,
    pub content: serde_json::Value,
    /// Makes starting idempotent: a second start with the same key is the first job.
    pub client_msg_id: Option<ClientMsgId>,
    /// `None`: every user of the app; else 1 to `MAX_BROADCAST_RECIPIENTS` users.
    pub users: Option<Vec<UserId>>,
}

/// A list audience names 1 to `MAX_BROADCAST_RECIPIENTS` users (a door may ask before it
/// parses the ids, so a list too long is refused whatever its ids).
pub fn check_audience_size(users: usize) -> Result<(), DeliveryError> {
    if users == 0 || users > MAX_BROADCAST_RECIPIENTS {
        return Err(DeliveryError::InvalidArgument(format!(
            "users must hold 1 to {MAX_BROADCAST_RECIPIENTS} user ids (leave it out for every user)"
        )));
    }
    Ok(())
}

/// Starts a broadcast (or, for a key used before, answers the job that key started).
/// The content is validated and passed through the app's word lists once, here. Returns
/// the job and whether it is new.
pub async fn start(p: &Pipeline, app: &App, req: StartBroadcast) -> Result<(Broadcast, bool), DeliveryError> {
    crate::delivery::check_message(app, req.msg_type, &req.content)?;
    let audience = match req.users {
        None => Audience::AllUsers,
        Some(users) => {
            check_audience_size(users.len())?;
            let mut seen = std::collections::HashSet::with_capacity(users.len());
            Audience::Users(users.into_iter().filter(|u| seen.insert(u.clone())).collect())
        }
    };
    let mut content = req.content;
    p.word_filter().apply(&app.id, req.msg_type, &mut content).await?;
    let id = format!("bc_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let job = NewBroadcast {
        request_key: req.client_msg_id.map_or_else(|| id.clone(), ClientMsgId::into_string),
        id,
        msg_type: req.msg_type,
        content,
        audience,
        created_at: now_ms(),
    };
    Ok(p.store().create_broadcast(&app.id, &job).await?)
}

pub async fn get(p: &Ctx, app: &App, id: &str) -> Result<Broadcast, DeliveryError> {
    p.store()
        .broadcast(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("broadcast"))
}

/// The app's broadcasts, newest first, before the broadcast `before`.
pub async fn list(p: &Ctx, app: &App, before: Option<&str>, limit: u32) -> Result<Vec<Broadcast>, DeliveryError> {
    Ok(p.store().broadcasts(&app.id, before, limit).await?)
}

/// Stops a running broadcast. Users it reached keep their notification (and the batch in
/// progress, if any, still completes); a finished job is answered as it is.
pub async fn cancel(p: &Ctx, app: &App, id: &str) -> Result<Broadcast, DeliveryError> {
    Ok(p.store()
        .stop_broadcast(&app.id, id, BroadcastState::Cancelled, None, now_ms())
        .await?)
}

/// The idempotency key of `user`'s notification from the job with `request_key`: the same
/// on every run of the batch, distinct per job and user, at most 64 characters.
pub fn notification_key(request_key: &str, user: &UserId) -> ClientMsgId {
    let d = Sha256::digest(format!("{request_key}\u{0}{user}").as_bytes());
    // 46 ASCII characters: always a valid client_msg_id.
    ClientMsgId::parse(&format!("bcast-{}", &hex::encode(d)[..40])).unwrap_or_else(|_| ClientMsgId::generate())
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claimed job is the worker's before another may take it over; longer
    /// than any batch takes.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (a new job wakes it at once).
    pub idle_poll: Duration,
    /// Most users in one batch (one transaction).
    pub max_batch: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
            idle_poll: Duration::from_secs(1),
            max_batch: 500,
        }
    }
}

/// What one turn of the worker did.
enum Turn {
    /// Nothing was due.
    Idle,
    /// A batch ran; its job is due again at this time (if still running).
    Worked { next_due: UnixMillis },
}

/// Runs broadcast jobs until `shutdown`. `wake` is notified when a job is started, so it
/// begins at once rather than at the next poll. Several workers (on several nodes) may run
/// against one database: each job is leased to one at a time.
pub fn spawn(
    pipeline: Arc<Pipeline>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    node_id: &str,
) -> JoinHandle<()> {
    tokio::spawn(task(pipeline, config, wake, shutdown, node_id))
}

/// The broadcast worker as a future, for a caller that spawns it on a `TaskTracker` of its
/// own (the engine); `spawn` is this on a plain Tokio task.
pub fn task(
    pipeline: Arc<Pipeline>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    node_id: &str,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let owner = format!("{node_id}/{}", ulid::Ulid::new());
    async move {
        let mut soonest: Option<UnixMillis> = None;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let wait = match turn(&pipeline, &config, &owner).await {
                Ok(Turn::Worked { next_due }) => {
                    soonest = Some(soonest.map_or(next_due, |s| s.min(next_due)));
                    continue;
                }
                Ok(Turn::Idle) => {
                    // A paced job comes due before the next poll: wait just for it.
                    let until_due = soonest
                        .take()
                        .map(|t| Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0)));
                    until_due.map_or(config.idle_poll, |d| d.min(config.idle_poll))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "broadcast batch failed; the job is retried when its lease ends");
                    config.idle_poll
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Claims the job that waited longest and runs one batch of it.
async fn turn(p: &Ctx, config: &WorkerConfig, owner: &str) -> Result<Turn, DeliveryError> {
    let lease_ms = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX);
    let Some((app_id, job)) = p.store().claim_broadcast(now_ms(), lease_ms, owner).await? else {
        return Ok(Turn::Idle);
    };
    let Some(app) = p.store().app(&app_id).await? else {
        p.store()
            .stop_broadcast(
                &app_id,
                &job.id,
                BroadcastState::Failed,
                Some("the app no longer exists"),
                now_ms(),
            )
            .await?;
        return Ok(Turn::Idle);
    };
    run_batch(p, &app, &job, config.max_batch, owner).await
}

async fn run_batch(p: &Ctx, app: &App, job: &Broadcast, max_batch: usize, owner: &str) -> Result<Turn, DeliveryError> {
    let started = std::time::Instant::now();
    let rate = app.settings.broadcast_rate_per_second.max(1);
    let size = max_batch.clamp(1, rate as usize);
    let store = p.store();

    // This batch's users, and where the next one starts.
    let (users, failed, after_user, next_index, done) = match &job.audience {
        Audience::AllUsers => {
            let page = store
                .list_users(
                    &app.id,
                    job.after_user.as_ref(),
                    u32::try_from(size).unwrap_or(u32::MAX),
                )
                .await?;
            let done = page.len() < size;
            let after = page.last().map(|u| u.id.clone()).or_else(|| job.after_user.clone());
            (page.into_iter().map(|u| u.id).collect::<Vec<_>>(), 0, after, 0, done)
        }
        Audience::Users(list) => {
            let from = usize::try_from(job.next_index).unwrap_or(0).min(list.len());
            let to = (from + size).min(list.len());
            let slice = &list[from..to];
            let existing = store.existing_users(&app.id, slice).await?;
            let users: Vec<UserId> = slice.iter().filter(|u| existing.contains(u)).cloned().collect();
            let failed = (slice.len() - users.len()) as i64;
            (users, failed, None, to as i64, to >= list.len())
        }
    };

    let now = now_ms();
    let batch: Vec<NewMessage> = users
        .iter()
        .map(|u| NewMessage {
            app_id: app.id.clone(),
            msg_id: MsgId::generate(),
            conversation_id: ConversationId::System(u.clone()),
            sender: Sender::System,
            client_msg_id: notification_key(&job.request_key, u),
            msg_type: job.msg_type,
            content: job.content.clone(),
            created_at: now,
            participants: vec![u.clone()],
            events: Vec::new(),
            reply_to: None,
            mentions: Vec::new(),
            mention_all: false,
            push: false,
        })
        .collect();
    let outcomes = if batch.is_empty() {
        Vec::new()
    } else {
        store.commit_messages(&batch).await?
    };
    let sent = outcomes.len() as i64;
    // A batch run again finds its notifications stored: push them anyway, as the first run
    // may have died before it pushed. Clients show each (conversation, seq) once.
    push_to_online(
        p,
        app,
        outcomes.into_iter().map(|o| match o {
            CommitOutcome::Stored(m) | CommitOutcome::Duplicate(m) => m,
        }),
    )
    .await;

    let handled = users.len() as i64 + failed;
    // Keep the app's pace: this batch's users at `rate` per second.
    let min_ms = handled.saturating_mul(1000) / i64::from(rate);
    let spent = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let next_run_at = now_ms() + (min_ms - spent).max(0);
    let events = if done {
        let data = json!({
            "broadcast_id": job.id,
            "audience": job.audience.as_str(),
            "users_seen": job.users_seen + handled,
            "sent": job.sent + sent,
            "failed": job.failed + failed,
        });
        webhook::after_event(app, "broadcast.finished", data, now_ms())
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let step = BroadcastStep {
        after_user,
        next_index,
        seen: handled,
        sent,
        failed,
        done,
        now: now_ms(),
        next_run_at,
    };
    let recorded = store.advance_broadcast(&app.id, &job.id, owner, &step, &events).await?;
    if recorded {
        p.outbox_written(!events.is_empty());
    } else {
        // Cancelled meanwhile, or the lease ran out and another worker has the job: the
        // batch's notifications are stored either way; its counts are the other's to record.
        tracing::info!(broadcast = %job.id, "broadcast step not recorded (cancelled or taken over)");
    }
    Ok(Turn::Worked { next_due: next_run_at })
}

/// Pushes each user's own notification to the nodes holding their sessions; offline users
/// find it when they sync.
async fn push_to_online(p: &Ctx, app: &App, messages: impl Iterator<Item = Message>) {
    let mut by_user: HashMap<UserId, Message> = HashMap::new();
    for m in messages {
        if let ConversationId::System(u) = &m.conversation_id {
            by_user.insert(u.clone(), m);
        }
    }
    if by_user.is_empty() {
        return;
    }
    let users: Vec<UserId> = by_user.keys().cloned().collect();
    let nodes = match p.presence().nodes_of(&app.id, &users).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "presence lookup failed; broadcast delivery left to sync");
            return;
        }
    };
    for (node, online) in nodes {
        for u in online {
            let Some(message) = by_user.get(&u) else { continue };
            let ev = BusEvent {
                app_id: app.id.clone(),
                target: Target::Users { users: vec![u.clone()] },
                push: Push::KeptNotification {
                    message: message.clone(),
                },
            };
            if let Err(e) = p.bus().publish(&node, ev).await {
                tracing::warn!(error = %e, node, "bus publish failed; broadcast delivery left to sync");
            }
        }
    }
}
