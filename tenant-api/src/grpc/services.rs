//! The gRPC services. Users and moderation call the platform operations
//! (`tern_platform::service`) directly, as REST does, and convert the domain values to
//! protobuf (`convert`); the other services still convert their request into the REST
//! input and call the REST operation (the house issue's remaining step).

use tern_platform::domain::{now_ms, App, WordPolicy};
use tern_platform::ids::UserId;
use tern_platform::proto::server_v1 as pb;
use tern_platform::service;
use tonic::{Request, Response, Status};

use super::convert::{self, struct_to_json};
use super::status::to_status;
use crate::error::ApiError;
use crate::rest::{conversations, lifecycle, messages, presence};
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
        let users = req.into_inner().users;
        let upserted = async {
            service::users::check_batch(users.len())?;
            let mut input = Vec::with_capacity(users.len());
            for u in users {
                let id = UserId::parse(&u.id)?;
                service::users::check_distinct(&input, &id)?;
                let profile = service::users::profile(u.name, u.avatar_url.map(Some), u.metadata.map(struct_to_json))?;
                input.push((id, profile));
            }
            Ok::<_, ApiError>(service::users::upsert(&self.state.pipeline, &app, &input).await?)
        };
        ok(upserted.await, |users| convert::users(users, None))
    }

    async fn get_user(&self, req: Request<pb::GetUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let detail = async {
            let id = UserId::parse(&req.into_inner().user_id)?;
            Ok::<_, ApiError>(service::users::detail(&self.state.pipeline, &app, &id).await?)
        };
        ok(detail.await, convert::user_detail)
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Answer<pb::UsersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let cursor = (!r.cursor.is_empty()).then_some(r.cursor.as_str());
        let page = service::users::list_page(&self.state.pipeline, &app, cursor, r.limit)
            .await
            .map_err(ApiError::from);
        ok(page, |p| convert::users(p.items, p.next_cursor))
    }

    async fn update_user(&self, req: Request<pb::UpdateUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let r = req.into_inner();
        let updated = async {
            let id = UserId::parse(&r.user_id)?;
            service::users::get(&self.state.pipeline, &app, &id).await?;
            let profile = service::users::profile(r.name, r.avatar_url.map(Some), r.metadata.map(struct_to_json))?;
            Ok::<_, ApiError>(service::users::update(&self.state.pipeline, &app, &id, profile).await?)
        };
        ok(updated.await, convert::user)
    }

    async fn delete_user(&self, req: Request<pb::DeleteUserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let deleted = async {
            let id = UserId::parse(&req.into_inner().user_id)?;
            Ok::<_, ApiError>(service::users::delete(&self.state.pipeline, &app, &id).await?)
        };
        ok(deleted.await, |()| pb::Empty {})
    }

    async fn mint_token(&self, req: Request<pb::MintTokenRequest>) -> Answer<pb::TokenResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let minted = async {
            let id = UserId::parse(&r.user_id)?;
            let ttl = service::users::token_ttl(&app, r.ttl_seconds)?;
            let st = &self.state;
            Ok::<_, ApiError>(service::users::mint_token(&st.pipeline, &st.secrets, &app, &id, ttl).await?)
        };
        ok(minted.await, |t| pb::TokenResponse {
            token: t.token,
            expires_at: t.expires_at,
        })
    }

    async fn revoke_tokens(&self, req: Request<pb::UserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let revoked = async {
            let id = UserId::parse(&req.into_inner().user_id)?;
            Ok::<_, ApiError>(service::users::revoke_tokens(&self.state.pipeline, &app, &id).await?)
        };
        ok(revoked.await, |()| pb::Empty {})
    }

    async fn kick(&self, req: Request<pb::UserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let kicked = async {
            let id = UserId::parse(&req.into_inner().user_id)?;
            Ok::<_, ApiError>(service::users::kick(&self.state.pipeline, &app, &id).await?)
        };
        ok(kicked.await, |()| pb::Empty {})
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

#[tonic::async_trait]
impl pb::moderation_server::Moderation for Server {
    async fn list_word_lists(&self, req: Request<pb::Empty>) -> Answer<pb::WordListsResponse> {
        let app = app(&req)?;
        let lists = service::moderation::word_lists(&self.state.pipeline, &app)
            .await
            .map_err(ApiError::from);
        ok(lists, |lists| pb::WordListsResponse {
            word_lists: lists.into_iter().map(convert::word_list).collect(),
        })
    }

    async fn get_word_list(&self, req: Request<pb::WordListRequest>) -> Answer<pb::WordList> {
        let app = app(&req)?;
        let list = async {
            let name = req.into_inner().name;
            service::moderation::check_list_name(&name)?;
            Ok::<_, ApiError>(service::moderation::word_list(&self.state.pipeline, &app, &name).await?)
        };
        ok(list.await, convert::word_list)
    }

    async fn put_word_list(&self, req: Request<pb::PutWordListRequest>) -> Answer<pb::WordList> {
        let app = app(&req)?;
        let r = req.into_inner();
        let policy = match r.policy.as_str() {
            "replace" => WordPolicy::Replace,
            "reject" => WordPolicy::Reject,
            _ => return Err(to_status(ApiError::invalid("policy must be replace or reject"))),
        };
        let stored = service::moderation::replace_word_list(&self.state.pipeline, &app, &r.name, policy, r.words)
            .await
            .map_err(ApiError::from);
        ok(stored, convert::word_list)
    }

    async fn delete_word_list(&self, req: Request<pb::WordListRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let deleted = async {
            let name = req.into_inner().name;
            service::moderation::check_list_name(&name)?;
            Ok::<_, ApiError>(service::moderation::delete_word_list(&self.state.pipeline, &app, &name).await?)
        };
        ok(deleted.await, |()| pb::Empty {})
    }

    async fn ban_user(&self, req: Request<pb::BanUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let r = req.into_inner();
        let banned = async {
            let until = service::moderation::restriction_end(r.until, now_ms())?;
            service::moderation::check_reason(&r.reason)?;
            let id = UserId::parse(&r.user_id)?;
            Ok::<_, ApiError>(service::moderation::ban(&self.state.pipeline, &app, &id, until, &r.reason).await?)
        };
        ok(banned.await, convert::user)
    }

    async fn unban_user(&self, req: Request<pb::UserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let unbanned = async {
            let id = UserId::parse(&req.into_inner().user_id)?;
            Ok::<_, ApiError>(service::moderation::unban(&self.state.pipeline, &app, &id).await?)
        };
        ok(unbanned.await, convert::user)
    }

    async fn mute_user(&self, req: Request<pb::MuteUserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let r = req.into_inner();
        let muted = async {
            let until = service::moderation::restriction_end(r.until, now_ms())?;
            let id = UserId::parse(&r.user_id)?;
            Ok::<_, ApiError>(service::moderation::mute(&self.state.pipeline, &app, &id, until).await?)
        };
        ok(muted.await, convert::user)
    }

    async fn unmute_user(&self, req: Request<pb::UserRequest>) -> Answer<pb::User> {
        let app = app(&req)?;
        let unmuted = async {
            let id = UserId::parse(&req.into_inner().user_id)?;
            Ok::<_, ApiError>(service::moderation::unmute(&self.state.pipeline, &app, &id).await?)
        };
        ok(unmuted.await, convert::user)
    }
}
