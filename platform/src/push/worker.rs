//! The push worker (the `worker` role; in-process under `tern serve`). Each round it
//! leases messages from the push outbox and turns each into jobs, one per device of each
//! recipient who had no live session, in one transaction with the outbox row's removal;
//! then it leases due jobs and sends them, many at once over each provider's HTTP/2
//! connection, recording every attempt in the log in the job's own transaction.
//!
//! At least once: a worker that dies holding a lease leaves the row to the next worker when
//! the lease ends. Never twice for one message and device: a job is keyed by both, so a
//! message expanded again makes no new job, and a job finished is never sent again. The one
//! window for a repeat is a crash after the provider answered and before the outcome was
//! written; the repeat carries the same `apns-id` and collapse id, so the device shows one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::apns::Apns;
use super::fcm::Fcm;
use super::provider::{push_uuid, ProviderAnswer, PushChannel, PushConfig, Verdict};
use crate::clock::Clock;
use crate::delivery::{DeliveryError, Pipeline};
use crate::domain::*;
use crate::ids::{AppId, ConversationId, MsgId, UserId};
use crate::secret_box::SecretBox;

#[derive(Debug, Clone)]
pub struct PushWorkerConfig {
    /// How often the outbox and the jobs are polled when nobody pokes the worker.
    pub poll_interval: Duration,
    /// Most outbox rows, and most jobs, taken per round.
    pub batch: u32,
    /// How long a leased row or job is reserved for this worker.
    pub lease: Duration,
    /// Most pushes in flight at once.
    pub concurrency: usize,
    /// Attempts before a job that keeps failing with retryable errors is given up.
    pub max_attempts: i32,
    /// Wait before the first retry; each later one waits twice as long, up to the cap.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for PushWorkerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch: 200,
            lease: Duration::from_secs(30),
            concurrency: 128,
            max_attempts: 6,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
        }
    }
}

/// What sends pushes: the providers' adapters, the app's credentials opened when needed,
/// and the pipeline's store, presence and group cache. Shared by the worker and the
/// test-push operation.
pub struct Pusher {
    p: Arc<Pipeline>,
    secrets: SecretBox,
    clock: Arc<dyn Clock>,
    channels: HashMap<PushProvider, Arc<dyn PushChannel>>,
}

impl Pusher {
    /// The APNs and FCM adapters on `config`.
    pub fn new(p: Arc<Pipeline>, secrets: SecretBox, clock: Arc<dyn Clock>, config: &PushConfig) -> Self {
        let mut channels: HashMap<PushProvider, Arc<dyn PushChannel>> = HashMap::new();
        channels.insert(PushProvider::Apns, Arc::new(Apns::new(config.clone())));
        channels.insert(PushProvider::Fcm, Arc::new(Fcm::new(config.clone())));
        Self {
            p,
            secrets,
            clock,
            channels,
        }
    }

    /// Replaces the adapter of one provider (another channel is one adapter).
    pub fn with_channel(mut self, channel: Arc<dyn PushChannel>) -> Self {
        self.channels.insert(channel.provider(), channel);
        self
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.p
    }

    /// Sends one notification to one device now, with the app's credentials for its
    /// provider. `push_not_configured` if the app has none.
    pub async fn send_now(
        &self,
        app: &App,
        device: &PushDevice,
        n: &PushNotification,
        push_id: &str,
    ) -> Result<(ProviderAnswer, i64), DeliveryError> {
        let Some(creds) = super::open_credentials(self.p.store().as_ref(), &self.secrets, app, device.provider).await?
        else {
            return Err(DeliveryError::PushNotConfigured(format!(
                "the app has no {} credentials",
                device.provider.as_str()
            )));
        };
        let Some(channel) = self.channels.get(&device.provider) else {
            return Err(DeliveryError::PushNotConfigured(format!(
                "no {} channel on this node",
                device.provider.as_str()
            )));
        };
        let started = Instant::now();
        let answer = channel.send(&creds, device, n, push_id).await;
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        count(device.provider, &answer);
        Ok((answer, latency))
    }

    fn now(&self) -> UnixMillis {
        self.clock.now_ms()
    }
}

/// Metrics: pushes sent, failed by reason, tokens removed.
fn count(provider: PushProvider, a: &ProviderAnswer) {
    let provider = provider.as_str();
    match a.verdict {
        Verdict::Sent => metrics::counter!("tern_push_sent_total", "provider" => provider).increment(1),
        Verdict::TokenDead => {
            metrics::counter!("tern_push_tokens_removed_total", "provider" => provider).increment(1);
        }
        Verdict::Retry | Verdict::Failed => {
            let reason = a.reason.clone().unwrap_or_else(|| format!("http_{}", a.status));
            // Local errors carry free text; keep the label set small.
            let reason = if a.status == 0 { "unreached".to_owned() } else { reason };
            metrics::counter!("tern_push_failed_total", "provider" => provider, "reason" => reason).increment(1);
        }
    }
}

/// The worker as a future, for the engine's task tracker. `wake` is poked by the pipeline
/// when a message was written to the push outbox.
pub async fn task(pusher: Arc<Pusher>, config: PushWorkerConfig, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if round(&pusher, &config).await {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}

/// One round: expand the outbox, send due jobs. True if it found work (look again at once).
pub async fn round(pusher: &Arc<Pusher>, config: &PushWorkerConfig) -> bool {
    let lease = millis(config.lease);
    let store = pusher.p.store();
    let mut busy = false;
    match store.claim_push_outbox(pusher.now(), config.batch, lease).await {
        Ok(rows) => {
            busy |= !rows.is_empty();
            for (app, msg) in rows {
                if let Err(e) = expand(pusher, &app, &msg).await {
                    // The row stays leased and is taken again when the lease ends.
                    tracing::warn!(%app, %msg, error = %e, "push: could not expand a message");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "push worker could not read the outbox"),
    }
    let jobs = match store.claim_push_jobs(pusher.now(), config.batch, lease).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "push worker could not read its jobs");
            return busy;
        }
    };
    busy |= !jobs.is_empty();
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut apps: HashMap<AppId, Option<App>> = HashMap::new();
    for job in jobs {
        if !apps.contains_key(&job.app_id) {
            let app = store.app(&job.app_id).await.ok().flatten();
            apps.insert(job.app_id.clone(), app);
        }
        let app = apps.get(&job.app_id).cloned().flatten();
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (pusher, config) = (pusher.clone(), config.clone());
        tasks.spawn(async move {
            send_job(&pusher, &config, app, job).await;
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    busy
}

/// Who is told of `m`: the other side of a direct chat, the user of a system notice, the
/// members of a group but the sender. In a group with more members than the app's
/// `push.mention_only_group_size`, only those the message @mentions (everyone for @all).
async fn recipients(pusher: &Pusher, app: &App, m: &Message) -> Result<Vec<UserId>, DeliveryError> {
    let sender = m.sender.user();
    Ok(match &m.conversation_id {
        ConversationId::Direct(a, b) => [a, b].into_iter().filter(|u| Some(*u) != sender).cloned().collect(),
        ConversationId::System(u) => vec![u.clone()],
        ConversationId::Group(g) => match pusher.p.group_snapshot(app, g).await {
            Ok(snap) => {
                let limit = app.settings.push.mention_only_group_size;
                let members = snap.ids();
                let mention_only = limit > 0 && members.len() > limit && !m.mention_all;
                members
                    .iter()
                    .filter(|u| Some(*u) != sender && (!mention_only || m.mentions.contains(u)))
                    .cloned()
                    .collect()
            }
            Err(DeliveryError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        },
        ConversationId::Room(_) => Vec::new(),
    })
}

/// Turns one outbox message into its jobs (none when nobody is offline, nobody has a
/// device, the app has no credentials for their providers, or the message is gone).
async fn expand(pusher: &Pusher, app_id: &AppId, msg: &MsgId) -> Result<(), DeliveryError> {
    let store = pusher.p.store();
    let jobs = match (store.app(app_id).await?, store.message(app_id, msg).await?) {
        (Some(app), Some(m)) if !m.recalled => jobs_for(pusher, &app, &m).await?,
        _ => Vec::new(),
    };
    store.expand_push(app_id, msg, &jobs, pusher.now()).await?;
    Ok(())
}

async fn jobs_for(pusher: &Pusher, app: &App, m: &Message) -> Result<Vec<PushJob>, DeliveryError> {
    let store = pusher.p.store();
    let configured: Vec<PushProvider> = store
        .push_credentials(&app.id)
        .await?
        .iter()
        .map(|c| c.provider)
        .collect();
    if configured.is_empty() {
        return Ok(Vec::new());
    }
    let users = recipients(pusher, app, m).await?;
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let presence = pusher
        .p
        .presence()
        .presence(&app.id, &users)
        .await
        .map_err(|e| DeliveryError::Unavailable(e.to_string()))?;
    let offline: Vec<UserId> = presence.into_iter().filter(|p| !p.online).map(|p| p.user_id).collect();
    if offline.is_empty() {
        return Ok(Vec::new());
    }
    // Muted conversations and do-not-disturb hours silence pushes (live delivery already
    // happened); the badge is each user's total unread count.
    let now = pusher.now();
    let audience = store.push_audience(&app.id, &m.conversation_id, &offline).await?;
    let mut badges: HashMap<UserId, i64> = HashMap::new();
    for a in audience {
        if !a.muted && !a.dnd.is_some_and(|d| d.contains(now)) {
            badges.insert(a.user_id, a.unread);
        }
    }
    if badges.is_empty() {
        return Ok(Vec::new());
    }
    let pushed: Vec<UserId> = offline.into_iter().filter(|u| badges.contains_key(u)).collect();
    let devices = store.devices_of(&app.id, &pushed).await?;
    let devices: Vec<PushDevice> = devices
        .into_iter()
        .filter(|d| configured.contains(&d.provider))
        .collect();
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let notification = notification(pusher, app, m).await?;
    let show_badge = app.settings.push.badge;
    Ok(devices
        .into_iter()
        .map(|d| {
            let mut n = notification.clone();
            n.badge = badges.get(&d.user_id).copied().filter(|_| show_badge);
            PushJob {
                app_id: app.id.clone(),
                msg_id: m.msg_id.clone(),
                device_id: d.id,
                user_id: d.user_id,
                notification: n,
                attempts: 0,
                created_at: 0,
            }
        })
        .collect())
}

/// What a message shows on a lock screen: by default the sender (or the group) as the
/// title and the text, or what kind of message it is, as the body; the app's template for
/// the message type replaces either, and its preview policy may hide the text.
async fn notification(pusher: &Pusher, app: &App, m: &Message) -> Result<PushNotification, DeliveryError> {
    let sender = match m.sender.user() {
        Some(u) => match pusher.p.store().user(&app.id, u).await? {
            Some(user) if !user.name.is_empty() => user.name,
            _ => u.to_string(),
        },
        None => app.name.clone(),
    };
    let settings = &app.settings.push;
    let what = if settings.show_preview {
        preview(m)
    } else {
        NO_PREVIEW.to_owned()
    };
    let group = match &m.conversation_id {
        ConversationId::Group(g) => Some(match pusher.p.group_snapshot(app, g).await {
            Ok(s) if !s.group.name.is_empty() => s.group.name.clone(),
            _ => g.to_string(),
        }),
        _ => None,
    };
    let (mut title, mut body) = match &group {
        Some(name) => (name.clone(), format!("{sender}: {what}")),
        None => (sender.clone(), what.clone()),
    };
    if let Some(t) = settings.templates.get(m.msg_type.as_str()) {
        let values = [
            ("sender", sender.as_str()),
            ("group", group.as_deref().unwrap_or("")),
            ("preview", what.as_str()),
        ];
        if let Some(t) = &t.title {
            title = PushTemplate::fill(t, &values);
        }
        if let Some(b) = &t.body {
            body = PushTemplate::fill(b, &values);
        }
    }
    let conversation = m.conversation_id.to_string();
    let mut data = std::collections::BTreeMap::new();
    data.insert("conversation_id".to_owned(), conversation.clone());
    data.insert("msg_id".to_owned(), m.msg_id.to_string());
    data.insert("seq".to_owned(), m.seq.to_string());
    Ok(PushNotification {
        title,
        body,
        badge: None,
        collapse_id: Some(collapse_id(&conversation)),
        data,
    })
}

/// The body when the app's preview policy hides the text.
pub const NO_PREVIEW: &str = "New message";

/// The body of a message's notification: its text (cut to 200 characters) or its kind.
fn preview(m: &Message) -> String {
    match m.msg_type {
        MessageType::Text => {
            let text = m.content["text"].as_str().unwrap_or("");
            let mut cut: String = text.chars().take(200).collect();
            if cut.len() < text.len() {
                cut.push('…');
            }
            cut
        }
        MessageType::Image => "[Image]".into(),
        MessageType::File => "[File]".into(),
        MessageType::Audio => "[Voice message]".into(),
        MessageType::Video => "[Video]".into(),
        MessageType::Location => "[Location]".into(),
        _ => "New message".into(),
    }
}

/// One collapse id per conversation, within APNs' 64 bytes.
pub fn collapse_id(conversation: &str) -> String {
    if conversation.len() <= super::apns::MAX_COLLAPSE_ID {
        conversation.to_owned()
    } else {
        use sha2::Digest as _;
        format!(
            "c:{}",
            &hex::encode(sha2::Sha256::digest(conversation.as_bytes()))[..40]
        )
    }
}

/// Sends one job and records the outcome.
async fn send_job(pusher: &Pusher, config: &PushWorkerConfig, app: Option<App>, job: PushJob) {
    let store = pusher.p.store();
    let attempt = job.attempts.saturating_add(1);
    let device = match store.device(&job.app_id, &job.device_id).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "push: could not read a device; the job waits for its lease");
            return;
        }
    };
    let (Some(app), Some(device)) = (app, device) else {
        // The device (or the app) is gone: nothing to send to, and no device to log for.
        if let Err(e) = store.finish_push_job(&job, attempt, JobNext::Done, None, false).await {
            tracing::warn!(error = %e, "push: could not close a job of a removed device");
        }
        return;
    };
    let push_id = push_uuid(&format!("{}/{}/{}", job.app_id, job.msg_id, job.device_id));
    let (answer, latency) = match pusher.send_now(&app, &device, &job.notification, &push_id).await {
        Ok(r) => r,
        Err(e) => (ProviderAnswer::local(Verdict::Failed, e.to_string()), 0),
    };
    let now = pusher.now();
    let (outcome, next) = match answer.verdict {
        Verdict::Sent => (PushOutcome::Sent, JobNext::Done),
        Verdict::TokenDead => (PushOutcome::TokenRemoved, JobNext::Done),
        Verdict::Failed => (PushOutcome::Failed, JobNext::Done),
        Verdict::Retry if attempt >= config.max_attempts => (PushOutcome::Failed, JobNext::Done),
        Verdict::Retry => (
            PushOutcome::Retrying,
            JobNext::RetryAt(now.saturating_add(millis(backoff(config, attempt)))),
        ),
    };
    let log = PushLogEntry {
        id: PushLogEntry::new_id(),
        at: now,
        user_id: job.user_id.clone(),
        device_id: job.device_id.clone(),
        msg_id: Some(job.msg_id.clone()),
        provider: device.provider,
        outcome,
        http_status: answer.status,
        reason: answer.reason,
        provider_id: answer.provider_id,
        latency_ms: latency,
        attempt,
    };
    let dead = outcome == PushOutcome::TokenRemoved;
    if let Err(e) = store.finish_push_job(&job, attempt, next, Some(&log), dead).await {
        // The job stays pending and is tried again when its lease ends: at least once.
        tracing::warn!(error = %e, "push: could not record an attempt");
    }
}

/// `base * 2^(attempt-1)`, capped, jittered down by up to half.
fn backoff(config: &PushWorkerConfig, attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = config.backoff_base.saturating_mul(1u32 << exp).min(config.backoff_cap);
    let half = full / 2;
    let jitter = rand::thread_rng().gen_range(0..=u64::try_from(half.as_millis()).unwrap_or(0));
    half + Duration::from_millis(jitter)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
