//! The gRPC services. Each method converts its request into the REST input, calls the same
//! operation as the REST handler (so both doors give the same answers and errors), and
//! converts the answer back.

use tern_platform::domain::App;
use tern_platform::proto::server_v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self, struct_to_json};
use super::status::to_status;
use crate::error::ApiError;
use crate::rest::{conversations, lifecycle, messages, moderation, presence, users};
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

pub(super) fn content(s: Option<prost_types::Struct>) -> serde_json::Value {
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
            reply_to: r.reply_to,
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

    // ---- message lifecycle ----
    async fn edit(&self, req: Request<pb::EditRequest>) -> Answer<pb::Message> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = lifecycle::EditMessage {
            content: content(r.content),
        };
        ok(
            lifecycle::edit_message(&self.state, &app, &r.msg_id, body).await,
            convert::message,
        )
    }

    async fn delete_for_user(&self, req: Request<pb::DeleteForUserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = lifecycle::DeleteForUser { user_id: r.user_id };
        ok(
            lifecycle::delete_message_for_user(&self.state, &app, &r.msg_id, body).await,
            |_| pb::Empty {},
        )
    }

    async fn get_extensions(&self, req: Request<pb::MessageRequest>) -> Answer<pb::ExtensionsResponse> {
        let app = app(&req)?;
        ok(
            lifecycle::message_extensions(&self.state, &app, &req.into_inner().msg_id).await,
            extensions,
        )
    }

    async fn update_extensions(&self, req: Request<pb::UpdateExtensionsRequest>) -> Answer<pb::ExtensionsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = lifecycle::UpdateExtensions {
            user_id: r.user_id,
            set: r
                .set
                .into_iter()
                .map(|s| lifecycle::ExtensionSet {
                    key: s.key,
                    value: s.value,
                    expected_version: s.expected_version,
                })
                .collect(),
            delete: r
                .delete
                .into_iter()
                .map(|d| lifecycle::ExtensionDelete {
                    key: d.key,
                    expected_version: d.expected_version,
                })
                .collect(),
        };
        ok(
            lifecycle::update_message_extensions(&self.state, &app, &r.msg_id, body).await,
            extensions,
        )
    }

    async fn add_reaction(&self, req: Request<pb::ReactionRequest>) -> Answer<pb::ReactionSummary> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            lifecycle::react(&self.state, &app, &r.msg_id, &r.reaction, &r.user_id, true).await,
            convert::reaction,
        )
    }

    async fn remove_reaction(&self, req: Request<pb::ReactionRequest>) -> Answer<pb::ReactionSummary> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            lifecycle::react(&self.state, &app, &r.msg_id, &r.reaction, &r.user_id, false).await,
            convert::reaction,
        )
    }

    async fn list_reaction_users(&self, req: Request<pb::ReactionUsersRequest>) -> Answer<pb::ReactionUsersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            lifecycle::list_reaction_users(
                &self.state,
                &app,
                &r.msg_id,
                &r.reaction,
                convert::page(r.cursor, r.limit),
            )
            .await,
            |a| pb::ReactionUsersResponse {
                users: a
                    .users
                    .into_iter()
                    .map(|u| pb::ReactionUser {
                        user_id: u.user_id,
                        reacted_at: u.reacted_at,
                    })
                    .collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }
}

fn extensions(a: lifecycle::ExtensionsAnswer) -> pb::ExtensionsResponse {
    pb::ExtensionsResponse {
        extensions: a.extensions.into_iter().map(convert::extension).collect(),
        version: a.version,
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
