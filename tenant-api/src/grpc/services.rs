//! The gRPC services. Each method converts its request into the REST input, calls the same
//! operation as the REST handler (so both doors give the same answers and errors), and
//! converts the answer back.

use tern_platform::domain::App;
use tern_platform::proto::server_v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self, struct_to_json};
use super::status::to_status;
use crate::error::ApiError;
use crate::rest::{broadcasts, conversations, messages, moderation, presence, users};
use crate::state::ApiState;

pub(super) type Answer<T> = Result<Response<T>, Status>;

#[derive(Clone)]
pub struct Server {
    pub state: ApiState,
}

/// The app the signature layer verified.
pub(super) fn app<T>(req: &Request<T>) -> Result<App, Status> {
    req.extensions()
        .get::<App>()
        .cloned()
        .ok_or_else(|| to_status(ApiError::internal("gRPC request reached a service unauthenticated")))
}

pub(super) fn ok<T, U>(r: Result<T, ApiError>, f: impl FnOnce(T) -> U) -> Answer<U> {
    r.map(|v| Response::new(f(v))).map_err(to_status)
}

fn content(s: Option<prost_types::Struct>) -> serde_json::Value {
    s.map_or(serde_json::Value::Null, struct_to_json)
}

#[tonic::async_trait]
impl pb::users_server::Users for Server {
    async fn upsert_users(&self, req: Request<pb::UpsertUsersRequest>) -> Answer<pb::UsersResponse> {
        let app = app(&req)?;
        let body = users::UpsertUsers {
            users: req
                .into_inner()
                .users
                .into_iter()
                .map(|u| users::UserInput {
                    id: u.id,
                    name: u.name,
                    avatar_url: u.avatar_url,
                    metadata: u.metadata.map(struct_to_json),
                })
                .collect(),
        };
        ok(users::upsert_users(&self.state, &app, body).await, convert::users)
    }

    async fn get_user(&self, req: Request<pb::GetUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        ok(
            users::get_user(&self.state, &app, &req.into_inner().user_id).await,
            convert::user_detail,
        )
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Answer<pb::UsersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            users::list_users(&self.state, &app, convert::page(r.cursor, r.limit)).await,
            convert::users,
        )
    }

    async fn update_user(&self, req: Request<pb::UpdateUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = users::UpdateUser {
            name: r.name,
            avatar_url: r.avatar_url.map(Some),
            metadata: r.metadata.map(struct_to_json),
        };
        ok(
            users::update_user(&self.state, &app, &r.user_id, body).await,
            convert::user,
        )
    }

    async fn delete_user(&self, req: Request<pb::DeleteUserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        ok(
            users::delete_user(&self.state, &app, &req.into_inner().user_id).await,
            |_| pb::Empty {},
        )
    }

    async fn mint_token(&self, req: Request<pb::MintTokenRequest>) -> Answer<pb::TokenResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            users::user_token(&self.state, &app, &r.user_id, r.ttl_seconds).await,
            |t| pb::TokenResponse {
                token: t.token,
                expires_at: t.expires_at,
            },
        )
    }

    async fn revoke_tokens(&self, req: Request<pb::UserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        ok(
            users::revoke_user_tokens(&self.state, &app, &req.into_inner().user_id).await,
            |_| pb::Empty {},
        )
    }

    async fn kick(&self, req: Request<pb::UserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        ok(
            users::kick_user(&self.state, &app, &req.into_inner().user_id).await,
            |_| pb::Empty {},
        )
    }
}

#[tonic::async_trait]
impl pb::messages_server::Messages for Server {
    async fn send(&self, req: Request<pb::SendRequest>) -> Answer<pb::SendResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let (user, group, room) = match r.to.and_then(|t| t.to) {
            Some(pb::target::To::User(u)) => (Some(u), None, None),
            Some(pb::target::To::Group(g)) => (None, Some(g), None),
            Some(pb::target::To::Room(x)) => (None, None, Some(x)),
            None => (None, None, None),
        };
        let body = messages::SendMessage {
            from: r.from,
            to: messages::Target { user, group, room },
            client_msg_id: (!r.client_msg_id.is_empty()).then_some(r.client_msg_id),
            msg_type: r.r#type,
            content: content(r.content),
            mentions: r.mentions,
            mention_all: r.mention_all,
        };
        ok(messages::send_message(&self.state, &app, body).await, convert::send)
    }

    async fn batch_send(&self, req: Request<pb::BatchSendRequest>) -> Answer<pb::BatchSendResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = messages::BatchSend {
            from: r.from,
            to: r.to,
            client_msg_id: (!r.client_msg_id.is_empty()).then_some(r.client_msg_id),
            msg_type: r.r#type,
            content: content(r.content),
        };
        ok(messages::batch(&self.state, &app, body).await, |a| {
            pb::BatchSendResponse {
                results: a
                    .results
                    .into_iter()
                    .map(|b| pb::BatchResult {
                        to: b.to,
                        message: b.message.map(convert::send),
                        error: b.error.unwrap_or_default(),
                    })
                    .collect(),
            }
        })
    }

    async fn get_message(&self, req: Request<pb::MessageRequest>) -> Answer<pb::Message> {
        let app = app(&req)?;
        ok(
            messages::get_message(&self.state, &app, &req.into_inner().msg_id).await,
            convert::message,
        )
    }

    async fn recall(&self, req: Request<pb::MessageRequest>) -> Answer<pb::Message> {
        let app = app(&req)?;
        ok(
            messages::recall_message(&self.state, &app, &req.into_inner().msg_id).await,
            convert::message,
        )
    }

    async fn history(&self, req: Request<pb::HistoryRequest>) -> Answer<pb::HistoryResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let q = messages::HistoryQuery {
            after_seq: r.after_seq,
            before_seq: r.before_seq,
            limit: (r.limit > 0).then_some(r.limit),
        };
        ok(
            messages::conversation_history(&self.state, &app, &r.conversation_id, q).await,
            |a| pb::HistoryResponse {
                messages: a.messages.into_iter().map(convert::message).collect(),
            },
        )
    }
}

#[tonic::async_trait]
impl pb::conversations_server::Conversations for Server {
    async fn list_conversations(
        &self,
        req: Request<pb::ListConversationsRequest>,
    ) -> Answer<pb::ConversationsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            conversations::list_conversations(&self.state, &app, &r.user_id, convert::page(r.cursor, r.limit)).await,
            |a| pb::ConversationsResponse {
                conversations: a.conversations.into_iter().map(convert::conversation).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn get_conversation(&self, req: Request<pb::ConversationRequest>) -> Answer<pb::Conversation> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            conversations::get_conversation(&self.state, &app, &r.user_id, &r.conversation_id).await,
            convert::conversation,
        )
    }

    async fn mark_read(&self, req: Request<pb::MarkReadRequest>) -> Answer<pb::Conversation> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            conversations::mark_conversation_read(&self.state, &app, &r.user_id, &r.conversation_id, r.seq).await,
            convert::conversation,
        )
    }
}

#[tonic::async_trait]
impl pb::presence_server::Presence for Server {
    async fn query_presence(&self, req: Request<pb::PresenceRequest>) -> Answer<pb::PresenceResponse> {
        let app = app(&req)?;
        let body = presence::PresenceQuery {
            users: req.into_inner().users,
        };
        ok(presence::query_presence(&self.state, &app, body).await, |a| {
            pb::PresenceResponse {
                users: a.users.into_iter().map(convert::presence).collect(),
            }
        })
    }
}

fn broadcast(b: broadcasts::BroadcastView) -> pb::Broadcast {
    pb::Broadcast {
        id: b.id,
        status: b.status,
        users_seen: b.users_seen,
        sent: b.sent,
        failed: b.failed,
        created_at: b.created_at,
        error: b.error,
    }
}

// ---- moderation ----

fn word_list(l: moderation::WordListView) -> pb::WordList {
    pb::WordList {
        name: l.name,
        policy: match l.policy {
            moderation::Policy::Replace => "replace".into(),
            moderation::Policy::Reject => "reject".into(),
        },
        words: l.words,
        created_at: l.created_at,
        updated_at: l.updated_at,
    }
}

#[tonic::async_trait]
impl pb::broadcasts_server::Broadcasts for Server {
    async fn start_broadcast(&self, req: Request<pb::StartBroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = broadcasts::StartBroadcast {
            msg_type: r.r#type,
            content: content(r.content),
            client_msg_id: (!r.client_msg_id.is_empty()).then_some(r.client_msg_id),
        };
        ok(broadcasts::start_broadcast(&self.state, &app, body).await, broadcast)
    }

    async fn get_broadcast(&self, req: Request<pb::BroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        ok(
            broadcasts::get_broadcast(&self.state, &app, &req.into_inner().broadcast_id),
            broadcast,
        )
    }
}

#[tonic::async_trait]
impl pb::moderation_server::Moderation for Server {
    async fn list_word_lists(&self, req: Request<pb::Empty>) -> Answer<pb::WordListsResponse> {
        let app = app(&req)?;
        ok(moderation::word_lists(&self.state, &app).await, |a| {
            pb::WordListsResponse {
                word_lists: a.word_lists.into_iter().map(word_list).collect(),
            }
        })
    }

    async fn get_word_list(&self, req: Request<pb::WordListRequest>) -> Answer<pb::WordList> {
        let app = app(&req)?;
        ok(
            moderation::word_list(&self.state, &app, &req.into_inner().name).await,
            word_list,
        )
    }

    async fn put_word_list(&self, req: Request<pb::PutWordListRequest>) -> Answer<pb::WordList> {
        let app = app(&req)?;
        let r = req.into_inner();
        let policy = match r.policy.as_str() {
            "replace" => moderation::Policy::Replace,
            "reject" => moderation::Policy::Reject,
            _ => return Err(to_status(ApiError::invalid("policy must be replace or reject"))),
        };
        let body = moderation::PutWordList { policy, words: r.words };
        ok(
            moderation::store_word_list(&self.state, &app, &r.name, body).await,
            word_list,
        )
    }

    async fn delete_word_list(&self, req: Request<pb::WordListRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        ok(
            moderation::remove_word_list(&self.state, &app, &req.into_inner().name).await,
            |_| pb::Empty {},
        )
    }

    async fn ban_user(&self, req: Request<pb::BanUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = moderation::BanRequest {
            until: r.until,
            reason: Some(r.reason),
        };
        ok(
            moderation::ban_user(&self.state, &app, &r.user_id, body).await,
            convert::user,
        )
    }

    async fn unban_user(&self, req: Request<pb::UserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        ok(
            moderation::unban_user(&self.state, &app, &req.into_inner().user_id).await,
            convert::user,
        )
    }

    async fn mute_user(&self, req: Request<pb::MuteUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = moderation::MuteRequest { until: r.until };
        ok(
            moderation::mute_user(&self.state, &app, &r.user_id, body).await,
            convert::user,
        )
    }

    async fn unmute_user(&self, req: Request<pb::UserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        ok(
            moderation::unmute_user(&self.state, &app, &req.into_inner().user_id).await,
            convert::user,
        )
    }
}
