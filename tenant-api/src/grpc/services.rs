//! The gRPC services of users, messages (with their lifecycle), conversations, presence and
//! moderation, and what every service shares (the verified app, the answer). Each method
//! parses its request into platform types (`crate::input`), calls the platform operation
//! (`tern_platform::service` or a feature module) as the REST handler does, and converts
//! the domain values to protobuf (`convert`).

use tern_platform::delivery::Actor;
use tern_platform::domain::{now_ms, App, ExtensionUpdate, WordPolicy};
use tern_platform::ids::{ClientMsgId, ConversationId, UserId};
use tern_platform::lifecycle;
use tern_platform::proto::server_v1 as pb;
use tern_platform::service;
use tonic::{Request, Response, Status};

use super::convert::{self, struct_to_json};
use super::status::to_status;
use crate::error::ApiError;
use crate::input::{self, MessageInput};
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
        let sent = async {
            let request = input::send_request(MessageInput {
                from: r.from.as_deref(),
                to_user: user.as_deref(),
                to_group: group.as_deref(),
                to_room: room.as_deref(),
                client_msg_id: (!r.client_msg_id.is_empty()).then_some(r.client_msg_id.as_str()),
                msg_type: &r.r#type,
                content: content(r.content),
                reply_to: r.reply_to.as_deref(),
                mentions: &r.mentions,
                mention_all: r.mention_all,
            })?;
            Ok::<_, ApiError>(self.state.pipeline.send(&app, request).await?)
        };
        ok(sent.await, convert::send)
    }

    async fn batch_send(&self, req: Request<pb::BatchSendRequest>) -> Answer<pb::BatchSendResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let sent = async {
            service::messages::check_batch(r.to.len())?;
            let batch = service::messages::BatchSend {
                from: input::user(&r.from)?,
                msg_type: input::message_type(&r.r#type)?,
                client_msg_id: (!r.client_msg_id.is_empty())
                    .then(|| ClientMsgId::parse(&r.client_msg_id))
                    .transpose()?,
                to: r.to.iter().map(|t| input::user(t)).collect::<Result<Vec<_>, _>>()?,
                content: content(r.content),
            };
            Ok::<_, ApiError>(service::messages::send_batch(&self.state.pipeline, &app, batch).await?)
        };
        ok(sent.await, |results| pb::BatchSendResponse {
            results: results
                .into_iter()
                .map(|(to, result)| {
                    let (message, error) = match result {
                        Ok(receipt) => (Some(convert::send(receipt)), String::new()),
                        Err(e) => (None, e.code().to_owned()),
                    };
                    pb::BatchResult {
                        to: to.into_string(),
                        message,
                        error,
                    }
                })
                .collect(),
        })
    }

    async fn get_message(&self, req: Request<pb::MessageRequest>) -> Answer<pb::Message> {
        let app = app(&req)?;
        let message = async {
            let id = input::msg_id(&req.into_inner().msg_id)?;
            Ok::<_, ApiError>(lifecycle::message_for(&self.state.pipeline, &app, &Actor::Server, &id).await?)
        };
        ok(message.await, convert::message)
    }

    async fn recall(&self, req: Request<pb::MessageRequest>) -> Answer<pb::Message> {
        let app = app(&req)?;
        let recalled = async {
            let id = input::msg_id(&req.into_inner().msg_id)?;
            Ok::<_, ApiError>(service::messages::recall(&self.state.pipeline, &app, &Actor::Server, &id).await?)
        };
        ok(recalled.await, convert::message)
    }

    async fn history(&self, req: Request<pb::HistoryRequest>) -> Answer<pb::HistoryResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let messages = async {
            let conversation = ConversationId::parse(&r.conversation_id)?;
            let p = &self.state.pipeline;
            let actor = &Actor::Server;
            Ok::<_, ApiError>(
                service::messages::history(p, &app, actor, &conversation, r.after_seq, r.before_seq, r.limit).await?,
            )
        };
        ok(messages.await, |messages| pb::HistoryResponse {
            messages: messages.into_iter().map(convert::message).collect(),
        })
    }

    // ---- message lifecycle ----
    async fn edit(&self, req: Request<pb::EditRequest>) -> Answer<pb::Message> {
        let app = app(&req)?;
        let r = req.into_inner();
        let edited = async {
            let id = input::msg_id(&r.msg_id)?;
            let p = &self.state.pipeline;
            Ok::<_, ApiError>(lifecycle::edit(p, &app, &Actor::Server, &id, content(r.content)).await?)
        };
        ok(edited.await, convert::message)
    }

    async fn delete_for_user(&self, req: Request<pb::DeleteForUserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let deleted = async {
            let id = input::msg_id(&r.msg_id)?;
            let user = input::user(&r.user_id)?;
            let p = &self.state.pipeline;
            lifecycle::delete_for_user(p, &app, &user, std::slice::from_ref(&id)).await?;
            Ok::<_, ApiError>(())
        };
        ok(deleted.await, |()| pb::Empty {})
    }

    async fn get_extensions(&self, req: Request<pb::MessageRequest>) -> Answer<pb::ExtensionsResponse> {
        let app = app(&req)?;
        let read = async {
            let id = input::msg_id(&req.into_inner().msg_id)?;
            Ok::<_, ApiError>(lifecycle::extensions(&self.state.pipeline, &app, &Actor::Server, &id).await?)
        };
        ok(read.await, |(list, version)| convert::extensions(list, version))
    }

    async fn update_extensions(&self, req: Request<pb::UpdateExtensionsRequest>) -> Answer<pb::ExtensionsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let updated = async {
            let id = input::msg_id(&r.msg_id)?;
            let actor = match &r.user_id {
                Some(u) => Actor::User(input::user(u)?),
                None => Actor::Server,
            };
            let updates: Vec<ExtensionUpdate> = r
                .set
                .into_iter()
                .map(|s| ExtensionUpdate {
                    key: s.key,
                    value: Some(s.value),
                    expected_version: s.expected_version,
                })
                .chain(r.delete.into_iter().map(|d| ExtensionUpdate {
                    key: d.key,
                    value: None,
                    expected_version: d.expected_version,
                }))
                .collect();
            let p = &self.state.pipeline;
            Ok::<_, ApiError>(lifecycle::update_extensions(p, &app, &actor, &id, &updates).await?)
        };
        ok(updated.await, |(list, version)| convert::extensions(list, version))
    }

    async fn add_reaction(&self, req: Request<pb::ReactionRequest>) -> Answer<pb::ReactionSummary> {
        let app = app(&req)?;
        ok(self.react(&app, req.into_inner(), true).await, convert::reaction)
    }

    async fn remove_reaction(&self, req: Request<pb::ReactionRequest>) -> Answer<pb::ReactionSummary> {
        let app = app(&req)?;
        ok(self.react(&app, req.into_inner(), false).await, convert::reaction)
    }

    async fn list_reaction_users(&self, req: Request<pb::ReactionUsersRequest>) -> Answer<pb::ReactionUsersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let id = input::msg_id(&r.msg_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            let p = &self.state.pipeline;
            Ok::<_, ApiError>(
                lifecycle::reaction_users(p, &app, &Actor::Server, &id, &r.reaction, cursor, limit).await?,
            )
        };
        ok(page.await, |page| pb::ReactionUsersResponse {
            users: page
                .users
                .into_iter()
                .map(|(u, at)| pb::ReactionUser {
                    user_id: u.into_string(),
                    reacted_at: at,
                })
                .collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }
}

impl Server {
    /// `user_id` adds (`add`) or takes off a reaction.
    async fn react(
        &self,
        app: &App,
        r: pb::ReactionRequest,
        add: bool,
    ) -> Result<tern_platform::domain::ReactionSummary, ApiError> {
        let id = input::msg_id(&r.msg_id)?;
        let user = input::user(&r.user_id)?;
        Ok(lifecycle::react(&self.state.pipeline, app, &user, &id, &r.reaction, add).await?)
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
        let page = async {
            let user = input::user(&r.user_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(
                service::conversations::list_page(&self.state.pipeline, &app, &user, cursor, limit).await?,
            )
        };
        ok(page.await, |page| pb::ConversationsResponse {
            conversations: page.items.into_iter().map(convert::conversation).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn get_conversation(&self, req: Request<pb::ConversationRequest>) -> Answer<pb::Conversation> {
        let app = app(&req)?;
        let r = req.into_inner();
        let entry = async {
            let user = input::user(&r.user_id)?;
            let conversation = ConversationId::parse(&r.conversation_id)?;
            Ok::<_, ApiError>(service::conversations::get(&self.state.pipeline, &app, &user, &conversation).await?)
        };
        ok(entry.await, convert::conversation)
    }

    async fn mark_read(&self, req: Request<pb::MarkReadRequest>) -> Answer<pb::Conversation> {
        let app = app(&req)?;
        let r = req.into_inner();
        let entry = async {
            let user = input::user(&r.user_id)?;
            let conversation = ConversationId::parse(&r.conversation_id)?;
            Ok::<_, ApiError>(
                service::conversations::mark_read(&self.state.pipeline, &app, &user, &conversation, r.seq).await?,
            )
        };
        ok(entry.await, convert::conversation)
    }
}

#[tonic::async_trait]
impl pb::presence_server::Presence for Server {
    async fn query_presence(&self, req: Request<pb::PresenceRequest>) -> Answer<pb::PresenceResponse> {
        let app = app(&req)?;
        let users = req.into_inner().users;
        let answer = async {
            service::presence::check_query(users.len())?;
            let ids = users.iter().map(|u| input::user(u)).collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ApiError>(service::presence::query(&self.state.pipeline, &app, &ids).await?)
        };
        ok(answer.await, |users| pb::PresenceResponse {
            users: users.into_iter().map(convert::presence).collect(),
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
