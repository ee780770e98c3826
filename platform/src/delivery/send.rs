//! `Pipeline::send`, the one path of every message, as its named stages in order:
//! `check_message`, `authorise`, `route`, `mentions`, `relations` (reply target, blocks,
//! a retry answered early), `moderate` (word lists, the before-send hook), `attach_file` (an
//! uploaded file named by a media message), `persist` (group
//! commit, which assigns the seq) and `publish`. A stage either passes what the next one
//! needs, refuses the send, or answers it early with the first answer of a retry.

use std::ops::ControlFlow;

use serde_json::json;

use super::hook::{HookDecision, HookDraft};
use super::pipeline::{Pipeline, Recipient, SendRequest};
use super::DeliveryError;
use crate::bus::Push;
use crate::domain::*;
use crate::ids::*;
use crate::store::{CommitOutcome, NewMessage};
use crate::webhook;

/// Where a message goes: its conversation and who must hold it in their list (direct and
/// system conversations; groups and rooms keep their own member lists).
struct Route {
    conversation: ConversationId,
    participants: Vec<UserId>,
}

/// What the message says about other users: `@` mentions and `@all`.
struct Mentions {
    users: Vec<UserId>,
    all: bool,
}

/// A stage's outcome when it may end the send early with an earlier answer.
type Early<T> = Result<ControlFlow<SendReceipt, T>, DeliveryError>;

impl Pipeline {
    /// Sends one message. The answer means it is durable; a retry with the same
    /// `client_msg_id` returns the first answer and stores nothing new, even if its
    /// content differs.
    pub async fn send(&self, app: &App, mut req: SendRequest) -> Result<SendReceipt, DeliveryError> {
        let now = now_ms();
        check_message(app, req.msg_type, &req.content)?;
        self.authorise(app, &req, now).await?;
        let route = self.route(app, &req, now).await?;
        let mentions = mentions(&req)?;
        let client_msg_id = req.client_msg_id.clone().unwrap_or_else(ClientMsgId::generate);
        let hooked = self.hook.is_some()
            && app.settings.webhook.url.is_some()
            && app.settings.webhook.before_send.selects(req.source, req.msg_type);
        let quoted = match self.relations(app, &req, &route, &client_msg_id, hooked).await? {
            ControlFlow::Continue(quoted) => quoted,
            ControlFlow::Break(first) => return Ok(first),
        };
        let content = std::mem::take(&mut req.content);
        let content = self
            .moderate(app, &req, &route, &client_msg_id, content, hooked)
            .await?;
        let content = self.attach_file(app, req.msg_type, content, &route).await?;
        let outcome = self
            .persist(app, &req, route, client_msg_id, content, quoted.as_ref(), mentions, now)
            .await?;
        metrics::counter!("tern_messages_total", "source" => match req.source { Source::Sdk => "sdk", Source::ServerApi => "server_api" }).increment(1);
        Ok(self.publish(app, &req.to, outcome, quoted.as_ref()).await)
    }

    /// A media message naming an uploaded file (`content.file_id`): the file must be a
    /// complete file of this app whose type fits the message (`image/*` for an image, ...).
    /// Its size, type and name are written into the content from the file's record (the
    /// record is the authority, and a `url` beside it is dropped), and the conversation is
    /// recorded as one the file was sent in, so its members may download it. Runs after the
    /// before-send hook, so a file the hook put in is checked too.
    async fn attach_file(
        &self,
        app: &App,
        msg_type: MessageType,
        mut content: serde_json::Value,
        route: &Route,
    ) -> Result<serde_json::Value, DeliveryError> {
        let Some(id) = content_file_id(msg_type, &content) else {
            return Ok(content);
        };
        let file = self
            .store()
            .file(&app.id, &id)
            .await?
            .ok_or(DeliveryError::NotFound("file"))?;
        if file.state != FileState::Complete {
            return Err(DeliveryError::FileNotReady);
        }
        let family = match msg_type {
            MessageType::Image => Some("image/"),
            MessageType::Video => Some("video/"),
            MessageType::Audio => Some("audio/"),
            _ => None,
        };
        if let Some(family) = family {
            if !file.content_type.starts_with(family) {
                return Err(DeliveryError::InvalidArgument(format!(
                    "a{} {} message needs a {family}* file; {} is {}",
                    if msg_type == MessageType::Image || msg_type == MessageType::Audio {
                        "n"
                    } else {
                        ""
                    },
                    msg_type.as_str(),
                    file.id,
                    file.content_type
                )));
            }
        }
        if let Some(obj) = content.as_object_mut() {
            obj.remove("url");
            obj.insert("size".into(), json!(file.size));
            obj.insert("content_type".into(), json!(file.content_type));
            if !obj.get("name").is_some_and(serde_json::Value::is_string) {
                obj.insert("name".into(), json!(file.name));
            }
        }
        self.store()
            .add_file_ref(&app.id, &file.id, &route.conversation)
            .await?;
        Ok(content)
    }

    /// The sender: a user who exists and is neither banned nor muted (`not_found` names
    /// "sender"); the system only through the server API.
    async fn authorise(&self, app: &App, req: &SendRequest, now: UnixMillis) -> Result<(), DeliveryError> {
        match &req.sender {
            Sender::User(uid) => self.check_sender(app, uid, now).await.map_err(|e| match e {
                DeliveryError::NotFound(_) => DeliveryError::NotFound("sender"),
                e => e,
            }),
            Sender::System if req.source != Source::ServerApi => Err(DeliveryError::Forbidden(
                "only the server API may send as the system".into(),
            )),
            Sender::System => Ok(()),
        }
    }

    /// The conversation, and the target's own rules: the recipient exists; a group's
    /// membership, mute and role rules; a room's gate (exists, not muted there, its rate).
    async fn route(&self, app: &App, req: &SendRequest, now: UnixMillis) -> Result<Route, DeliveryError> {
        Ok(match (&req.to, &req.sender) {
            (Recipient::User(to), Sender::User(from)) => {
                self.user_state(app, to)
                    .await?
                    .ok_or(DeliveryError::NotFound("recipient"))?;
                let mut participants = vec![from.clone()];
                if from != to {
                    participants.push(to.clone());
                }
                Route {
                    conversation: ConversationId::direct(from, to),
                    participants,
                }
            }
            (Recipient::User(to), Sender::System) => {
                self.user_state(app, to)
                    .await?
                    .ok_or(DeliveryError::NotFound("recipient"))?;
                Route {
                    conversation: ConversationId::System(to.clone()),
                    participants: vec![to.clone()],
                }
            }
            (Recipient::Group(g), sender) => {
                let group = self.group_snapshot(app, g).await?;
                crate::rules::groups::check_send(
                    &group,
                    sender,
                    &req.options.mentions,
                    req.options.mention_all,
                    req.source,
                    now,
                )?;
                Route {
                    conversation: ConversationId::Group(g.clone()),
                    participants: Vec::new(),
                }
            }
            (Recipient::Room(r), sender) => {
                self.room_gate().admit(self, app, r, sender, now).await?;
                Route {
                    conversation: ConversationId::Room(r.clone()),
                    participants: Vec::new(),
                }
            }
        })
    }

    /// The reply target (in the same conversation) and, for a direct message, that neither
    /// side blocked the other. A retry of a message already stored answers with the first
    /// answer even if one of these would now refuse it; with a before-send hook a retry is
    /// answered here, before the hook is called again (without one, the commit recognises
    /// it and the read is saved).
    async fn relations(
        &self,
        app: &App,
        req: &SendRequest,
        route: &Route,
        client_msg_id: &ClientMsgId,
        hooked: bool,
    ) -> Early<Option<Message>> {
        let quoted = match crate::rules::messages::reply_target(
            self.store().as_ref(),
            app,
            &req.sender,
            &route.conversation,
            req.options.reply_to.as_ref(),
        )
        .await
        {
            Ok(quoted) => quoted,
            // A reply stored before its quote was recalled still answers its retries.
            Err(refused) => return self.first_answer_or(app, req, client_msg_id, refused).await,
        };
        if hooked {
            if let Some(first) = self.first_answer(app, req, client_msg_id).await? {
                return Ok(ControlFlow::Break(first));
            }
        }
        if let (Recipient::User(to), Sender::User(from)) = (&req.to, &req.sender) {
            if let Err(refused) = crate::rules::friends::check_direct(self, app, from, to).await {
                // A message stored before the block (or unfriending) still answers its retries.
                return self.first_answer_or(app, req, client_msg_id, refused).await;
            }
        }
        Ok(ControlFlow::Continue(quoted))
    }

    /// The content as it will be stored: the app's word lists applied, then the tenant's
    /// before-send hook (allow, replace, reject; unreachable is `webhook_unavailable`).
    async fn moderate(
        &self,
        app: &App,
        req: &SendRequest,
        route: &Route,
        client_msg_id: &ClientMsgId,
        mut content: serde_json::Value,
        hooked: bool,
    ) -> Result<serde_json::Value, DeliveryError> {
        self.words.apply(&app.id, req.msg_type, &mut content).await?;
        let Some(hook) = self.hook.as_ref().filter(|_| hooked) else {
            return Ok(content);
        };
        let draft = HookDraft {
            conversation_id: route.conversation.clone(),
            sender: req.sender.clone(),
            client_msg_id: client_msg_id.clone(),
            msg_type: req.msg_type,
            content,
            source: req.source,
            edit_of: None,
        };
        match hook.check(app, &draft).await {
            HookDecision::Allow => Ok(draft.content),
            HookDecision::Reject { reason } => Err(DeliveryError::MessageRejected(reason)),
            HookDecision::Replace { content } => Ok(content),
            HookDecision::Unavailable => Err(DeliveryError::WebhookUnavailable),
        }
    }

    /// Group commit: the message, its seq, the participants' conversation entries and the
    /// `message.sent` after-event, in one transaction. Idempotent on (app, sender,
    /// client_msg_id).
    #[allow(clippy::too_many_arguments)]
    async fn persist(
        &self,
        app: &App,
        req: &SendRequest,
        route: Route,
        client_msg_id: ClientMsgId,
        content: serde_json::Value,
        quoted: Option<&Message>,
        mentions: Mentions,
        now: UnixMillis,
    ) -> Result<CommitOutcome, DeliveryError> {
        let msg_id = MsgId::generate();
        let mut data = json!({
            "msg_id": msg_id,
            "conversation_id": route.conversation,
            "from": req.sender.user(),
            "client_msg_id": client_msg_id,
            "type": req.msg_type,
            "content": content,
            "created_at": now,
            "reply_to": quoted.map(|q| &q.msg_id),
        });
        if let (Some(d), true) = (data.as_object_mut(), !mentions.users.is_empty() || mentions.all) {
            d.insert("mentions".into(), json!(mentions.users));
            d.insert("mention_all".into(), json!(mentions.all));
        }
        let event = webhook::after_event(app, "message.sent", data, now);
        let has_event = event.is_some();
        // Rooms are for whoever is connected; everything else may be pushed to the offline,
        // if the app has push credentials (without, the worker would make no job of it).
        let push = !matches!(route.conversation, ConversationId::Room(_)) && self.pushes_for(app).await;
        let outcome = self
            .writer
            .commit(NewMessage {
                app_id: app.id.clone(),
                msg_id,
                conversation_id: route.conversation,
                sender: req.sender.clone(),
                client_msg_id,
                msg_type: req.msg_type,
                content,
                created_at: now,
                participants: route.participants,
                events: event.into_iter().collect(),
                reply_to: quoted.map(|q| q.msg_id.clone()),
                mentions: mentions.users,
                mention_all: mentions.all,
                push,
            })
            .await?;
        if matches!(outcome, CommitOutcome::Stored(_)) {
            self.outbox_written(has_event);
            self.push_written(push);
            self.usage().message(&app.id);
        }
        Ok(outcome)
    }

    /// Hands the message to every device of its recipients (a user's system conversation
    /// is their notification inbox) and answers the sender with its receipt. A retry of a
    /// stored message is published again: the node that stored it may have died before it
    /// published (the sender then retries elsewhere), and devices drop a seq they hold.
    async fn publish(
        &self,
        app: &App,
        to: &Recipient,
        outcome: CommitOutcome,
        quoted: Option<&Message>,
    ) -> SendReceipt {
        let message = match outcome {
            CommitOutcome::Stored(mut message) => {
                message.quoted = quoted.map(|q| Box::new(QuotedMessage::from(q)));
                message
            }
            CommitOutcome::Duplicate(first) => first,
        };
        let receipt = message.receipt();
        let push = match message.conversation_id {
            ConversationId::System(_) => Push::KeptNotification { message },
            _ => Push::Message { message },
        };
        self.fan_out(app, to, push).await;
        receipt
    }

    /// The stored message a retry repeats, if any.
    async fn first_answer(
        &self,
        app: &App,
        req: &SendRequest,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<SendReceipt>, DeliveryError> {
        Ok(self
            .store()
            .message_by_client_msg_id(&app.id, req.sender.idempotency_key(), client_msg_id)
            .await?
            .map(|m| m.receipt()))
    }

    /// The first answer of a retry, or `refused` if this is no retry.
    async fn first_answer_or<T>(
        &self,
        app: &App,
        req: &SendRequest,
        client_msg_id: &ClientMsgId,
        refused: DeliveryError,
    ) -> Early<T> {
        match self.first_answer(app, req, client_msg_id).await? {
            Some(first) => Ok(ControlFlow::Break(first)),
            None => Err(refused),
        }
    }
}

/// The message itself: not the reserved `system` type, content valid for its type and
/// within the app's size limits (a send's, and a broadcast's before its job starts).
pub(crate) fn check_message(
    app: &App,
    msg_type: MessageType,
    content: &serde_json::Value,
) -> Result<(), DeliveryError> {
    if msg_type == MessageType::System {
        return Err(DeliveryError::InvalidArgument(
            "type system is reserved for Tern".into(),
        ));
    }
    validate_content(
        msg_type,
        content,
        ContentLimits {
            max_text_bytes: app.settings.max_text_bytes,
            max_content_bytes: app.settings.max_content_bytes,
        },
    )?;
    Ok(())
}

/// Mentions, without repeats; they belong to group messages (checked against the members
/// by `route`).
fn mentions(req: &SendRequest) -> Result<Mentions, DeliveryError> {
    let mut users: Vec<UserId> = Vec::with_capacity(req.options.mentions.len());
    for u in &req.options.mentions {
        if !users.contains(u) {
            users.push(u.clone());
        }
    }
    let all = req.options.mention_all;
    if (!users.is_empty() || all) && !matches!(req.to, Recipient::Group(_)) {
        return Err(DeliveryError::InvalidArgument(
            "mentions and mention_all are for group messages".into(),
        ));
    }
    Ok(Mentions { users, all })
}
