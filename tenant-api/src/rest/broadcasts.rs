//! Broadcasts: one system message to every user of the app, as an asynchronous job whose
//! progress can be queried. Each user gets it in their system conversation (`s:<user>`), so
//! offline users find it when they sync.
//!
//! Jobs live in this process's memory: a restart forgets a running job (users already
//! reached keep their message; re-posting with the same `client_msg_id` resumes without
//! doubling, because each user's message is keyed by it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tern_platform::delivery::{Recipient, SendRequest};
use tern_platform::domain::{now_ms, App, MessageType, Sender, Source};
use tern_platform::ids::{AppId, ClientMsgId, UserId};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

/// Users fetched and sent to per step.
const PAGE: u32 = 100;

#[derive(Default)]
struct Job {
    app_id: Option<AppId>,
    created_at: i64,
    users_seen: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    done: AtomicBool,
    error: Mutex<Option<String>>,
}

#[derive(Default, Clone)]
pub struct Broadcasts {
    jobs: Arc<Mutex<HashMap<String, Arc<Job>>>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBroadcast {
    #[serde(rename = "type")]
    pub msg_type: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Makes the broadcast resumable: each user's message is keyed by it.
    pub client_msg_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BroadcastView {
    pub id: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    pub users_seen: u64,
    pub sent: u64,
    pub failed: u64,
    pub created_at: i64,
    pub error: Option<String>,
}

fn view(id: &str, j: &Job) -> BroadcastView {
    let error = j.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let status = match (j.done.load(Ordering::Acquire), error.is_some()) {
        (false, _) => "running",
        (true, false) => "done",
        (true, true) => "failed",
    };
    BroadcastView {
        id: id.to_owned(),
        status: status.to_owned(),
        users_seen: j.users_seen.load(Ordering::Relaxed),
        sent: j.sent.load(Ordering::Relaxed),
        failed: j.failed.load(Ordering::Relaxed),
        created_at: j.created_at,
        error,
    }
}

fn user_key(key: &str, user: &UserId) -> Option<ClientMsgId> {
    let d = Sha256::digest(format!("{key}\u{0}{user}").as_bytes());
    ClientMsgId::parse(&format!("bcast-{}", &hex::encode(d)[..40])).ok()
}

async fn run(st: ApiState, app: App, job: Arc<Job>, msg_type: MessageType, content: serde_json::Value, key: String) {
    let mut after: Option<UserId> = None;
    loop {
        let page = match st.store.list_users(&app.id, after.as_ref(), PAGE).await {
            Ok(p) => p,
            Err(e) => {
                *job.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        job.users_seen.fetch_add(page.len() as u64, Ordering::Relaxed);
        let sends = page.iter().map(|u| {
            let req = SendRequest {
                sender: Sender::System,
                to: Recipient::User(u.id.clone()),
                client_msg_id: user_key(&key, &u.id),
                msg_type,
                content: content.clone(),
                source: Source::ServerApi,
                options: Default::default(),
            };
            st.pipeline.send(&app, req)
        });
        for r in futures::future::join_all(sends).await {
            match r {
                Ok(_) => job.sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => job.failed.fetch_add(1, Ordering::Relaxed),
            };
        }
        if (page.len() as u32) < PAGE {
            break;
        }
    }
    job.done.store(true, Ordering::Release);
}

/// Starts a broadcast of a system message to every user of the app.
#[utoipa::path(post, path = "/v1/broadcasts", tag = "broadcasts", request_body = StartBroadcast,
    responses((status = 202, body = BroadcastView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn start(
    State(st): State<ApiState>,
    req: Signed<StartBroadcast>,
) -> Result<(StatusCode, Json<BroadcastView>), ApiError> {
    let v = start_broadcast(&st, &req.app, req.body).await?;
    Ok((StatusCode::ACCEPTED, Json(v)))
}

pub async fn start_broadcast(st: &ApiState, app: &App, b: StartBroadcast) -> Result<BroadcastView, ApiError> {
    let msg_type = MessageType::parse_sendable(&b.msg_type)
        .ok_or_else(|| ApiError::invalid("type must be one of text, image, file, audio, video, location, custom"))?;
    tern_platform::domain::validate_content(
        msg_type,
        &b.content,
        tern_platform::domain::ContentLimits {
            max_text_bytes: app.settings.max_text_bytes,
            max_content_bytes: app.settings.max_content_bytes,
        },
    )
    .map_err(tern_platform::delivery::DeliveryError::from)?;
    if let Some(k) = &b.client_msg_id {
        ClientMsgId::parse(k)?;
    }
    let id = format!("bc_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    let key = b.client_msg_id.unwrap_or_else(|| id.clone());
    let job = Arc::new(Job {
        app_id: Some(app.id.clone()),
        created_at: now_ms(),
        ..Default::default()
    });
    st.broadcasts
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), job.clone());
    let v = view(&id, &job);
    tokio::spawn(run(st.clone(), app.clone(), job, msg_type, b.content, key));
    Ok(v)
}

/// Progress of a broadcast.
#[utoipa::path(get, path = "/v1/broadcasts/{broadcast_id}", tag = "broadcasts", params(("broadcast_id" = String, Path)),
    responses((status = 200, body = BroadcastView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<BroadcastView>, ApiError> {
    get_broadcast(&st, &req.app, &id).map(Json)
}

pub fn get_broadcast(st: &ApiState, app: &App, id: &str) -> Result<BroadcastView, ApiError> {
    let job = st
        .broadcasts
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .cloned();
    match job {
        Some(j) if j.app_id.as_ref() == Some(&app.id) => Ok(view(id, &j)),
        _ => Err(ApiError::not_found("broadcast")),
    }
}
