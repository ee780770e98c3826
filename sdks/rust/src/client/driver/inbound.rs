//! What the driver does with each frame the server sends: answers to its requests, pushed
//! messages and changes, sync results, and the gap fills they call for.

use std::collections::HashSet;
use std::time::Duration;

use crate::proto as pb;
use crate::types::{ClientError, Event, Message, MessageChange, PresenceInfo, SendAck};
use pb::client_frame::Command;
use pb::server_frame::Body;

use super::{Driver, End, Link, Pending, Retry, FILL_PAGE};

/// Answers to a history pull that say "not now" rather than "never": asked again later.
const RETRYABLE: [&str; 3] = ["rate_limited", "unavailable", "internal"];

/// How long to wait before asking again after the `refusals`-th refusal in a row: the
/// server's `retry_after_ms` if longer, else 1 s doubling to 30 s.
fn fill_retry_wait(refusals: u32, retry_after_ms: i64) -> Duration {
    let backoff = Duration::from_secs(1 << refusals.min(5)).min(Duration::from_secs(30));
    backoff.max(Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0)))
}

impl Driver {
    /// Handles one frame; `Some` ends the connection.
    pub(super) async fn on_frame(&mut self, ws: &mut Link, f: pb::ServerFrame) -> Option<End> {
        let body = f.body?;
        if !f.id.is_empty() {
            let pending = self.pending.remove(&f.id)?;
            return self.on_answer(ws, pending, body).await;
        }
        match body {
            Body::Message(m) => {
                let m = Message::from(&m);
                let conv = m.conversation_id.clone();
                let t = self.timelines.entry(conv.clone()).or_default();
                // A direct conversation that began after the first sync starts at its first
                // message, not at the first one pushed here: pushes of the two sides'
                // concurrent sends may arrive out of order, and the fill below pulls what
                // came before. (Groups and rooms keep starting at the first push: what came
                // before a member joined is not theirs to pull.)
                if self.listed_all && conv.starts_with("d:") {
                    t.baseline(0);
                }
                let out = t.offer(m);
                self.deliver(out);
                if !self.fill(ws, &conv).await {
                    return Some(End::Retry("write failed".into()));
                }
            }
            Body::Recall(r) => self.on_change(MessageChange::from(&r)),
            Body::Change(c) => self.on_change(MessageChange::from(&c)),
            Body::Receipt(r) => self.emit(Event::Receipt {
                conversation_id: r.conversation_id,
                user_id: r.user_id,
                read_seq: r.read_seq,
            }),
            Body::Typing(t) => self.emit(Event::Typing {
                conversation_id: t.conversation_id,
                user_id: t.user_id,
            }),
            Body::Presence(p) => self.emit(Event::Presence(PresenceInfo::from(&p))),
            Body::Notification(n) if !n.conversation_id.is_empty() && n.seq > 0 => {
                // A kept notification: through its conversation's timeline, like a message,
                // so a pull of the same conversation does not show it again.
                let m = Message {
                    msg_id: n.notification_id,
                    conversation_id: n.conversation_id,
                    seq: n.seq,
                    sender: None,
                    client_msg_id: String::new(),
                    msg_type: n.r#type,
                    content: n
                        .content
                        .as_ref()
                        .map_or(serde_json::Value::Null, crate::content::struct_to_json),
                    created_at: n.created_at,
                    recalled: false,
                    edited_at: None,
                    reply_to: None,
                    quoted: None,
                    version: 0,
                    extensions: Vec::new(),
                    reactions: Vec::new(),
                    mentions: Vec::new(),
                    mention_all: false,
                };
                let conv = m.conversation_id.clone();
                let out = self.timelines.entry(conv.clone()).or_default().offer(m);
                self.deliver(out);
                if !self.fill(ws, &conv).await {
                    return Some(End::Retry("write failed".into()));
                }
            }
            Body::Notification(n) => self.emit(Event::Notification {
                id: n.notification_id,
                content: n
                    .content
                    .as_ref()
                    .map_or(serde_json::Value::Null, crate::content::struct_to_json),
                created_at: n.created_at,
                conversation_id: None,
                seq: None,
                msg_type: None,
            }),
            Body::RoomLeft(r) => {
                self.rooms.remove(&r.room_id);
                if r.reason == "dismissed" {
                    // A room made again under this id starts its seqs over.
                    self.timelines.remove(&format!("r:{}", r.room_id));
                }
                self.emit(Event::RoomLeft {
                    room_id: r.room_id,
                    reason: r.reason,
                });
            }
            Body::Kicked(k) => {
                self.emit(Event::Kicked {
                    code: k.code.clone(),
                    reason: k.reason.clone(),
                });
                return Some(if k.code == "going_away" {
                    End::Retry(k.reason)
                } else {
                    End::Stop {
                        code: k.code,
                        reason: k.reason,
                    }
                });
            }
            // An error push precedes a close (slow consumer, heartbeat, ...): reconnect.
            Body::Error(e) => return Some(End::Retry(format!("{}: {}", e.code, e.message))),
            _ => {}
        }
        None
    }

    async fn on_answer(&mut self, ws: &mut Link, pending: Pending, body: Body) -> Option<End> {
        match pending {
            Pending::User(reply) => {
                if let Body::RoomJoined(r) = &body {
                    if !self.on_room_joined(ws, r).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
                let r = match body {
                    Body::Error(e) => Err(ClientError::Server {
                        code: e.code,
                        message: e.message,
                    }),
                    b => Ok(b),
                };
                let _ = reply.send(r);
            }
            Pending::Send(key) => match body {
                Body::SendAck(a) => {
                    if let Some(o) = self.outbox.remove(&key) {
                        if let Some(r) = o.reply {
                            let _ = r.send(Ok(SendAck {
                                msg_id: a.msg_id,
                                conversation_id: a.conversation_id,
                                seq: a.seq,
                                created_at: a.created_at,
                                client_msg_id: a.client_msg_id,
                            }));
                        }
                    }
                }
                Body::Error(e) if e.code == "rate_limited" || e.code == "unavailable" => {
                    let wait = Duration::from_millis(u64::try_from(e.retry_after_ms).unwrap_or(0).max(50));
                    self.retry_later(Retry::Send(key), wait);
                }
                Body::Error(e) => {
                    if let Some(o) = self.outbox.remove(&key) {
                        if let Some(r) = o.reply {
                            let _ = r.send(Err(ClientError::Server {
                                code: e.code,
                                message: e.message,
                            }));
                        }
                    }
                }
                _ => {}
            },
            Pending::Sync => {
                if let Body::SyncResult(s) = body {
                    if !self.on_sync(ws, s).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
            }
            Pending::Fill(conv, after) => {
                let t = self.timelines.get_mut(&conv)?;
                t.filling = false;
                match body {
                    Body::HistoryResult(h) => {
                        t.fill_refusals = 0;
                        let out = t.offer_page(after, h.messages.iter().map(Message::from).collect());
                        self.deliver(out);
                        if !self.fill(ws, &conv).await {
                            return Some(End::Retry("write failed".into()));
                        }
                    }
                    Body::Error(e) if RETRYABLE.contains(&e.code.as_str()) => {
                        // Asked again later, never at once: held as filling meanwhile, so
                        // no push re-asks.
                        let wait = fill_retry_wait(t.fill_refusals, e.retry_after_ms);
                        t.fill_refusals += 1;
                        t.filling = true;
                        self.retry_later(Retry::Fill(conv), wait);
                    }
                    _ => {
                        // The user may not read what is missing (they left the group, say):
                        // hand out what came after it instead of asking for it for ever.
                        t.fill_refusals = 0;
                        let out = t.skip_gap();
                        self.deliver(out);
                    }
                }
            }
            Pending::Join => {
                if let Body::RoomJoined(r) = &body {
                    if !self.on_room_joined(ws, r).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
            }
            Pending::Changes(conv) => {
                // A refused pull is owed still: the next connection resumes it
                // (`resume_pulls`).
                if let Body::ChangesResult(r) = body {
                    let t = self.timelines.entry(conv.clone()).or_default();
                    let mut out = Vec::new();
                    for c in &r.changes {
                        out.extend(t.change(MessageChange::from(c)));
                    }
                    t.pulled_through(r.version);
                    if !r.has_more {
                        t.changes_owed = None;
                    }
                    self.deliver(out);
                    if r.has_more && !self.pull_changes(ws, &conv, r.version).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
            }
            Pending::Ping => {}
            Pending::Presence => {
                if let Body::PresenceResult(p) = body {
                    for u in &p.users {
                        self.emit(Event::Presence(PresenceInfo::from(u)));
                    }
                }
            }
        }
        None
    }

    /// A room's recent messages go through the room's timeline like any others. A room
    /// shows what was said while this client was in it, and the backlog of a join: on a
    /// re-join (after a reconnect) messages between what was shown and the backlog are
    /// skipped, not pulled, and seqs that restarted (the room was made again) start over.
    async fn on_room_joined(&mut self, ws: &mut Link, r: &pb::RoomJoined) -> bool {
        let conv = r.conversation_id.clone();
        let start = r.recent.first().map_or(r.last_seq, |m| m.seq - 1);
        let t = self.timelines.entry(conv.clone()).or_default();
        t.joined_at(start, r.last_seq);
        let mut out = Vec::new();
        for m in &r.recent {
            out.extend(t.offer(Message::from(m)));
        }
        self.deliver(out);
        self.fill(ws, &conv).await
    }

    /// Takes in a page of the conversation list: notes how far each conversation reaches,
    /// pulls what is missing, and asks for the next page if there is one.
    pub(super) async fn on_sync(&mut self, ws: &mut Link, s: pb::SyncResult) -> bool {
        let mut convs = Vec::new();
        let mut changed = Vec::new();
        for c in &s.conversations {
            let t = self.timelines.entry(c.conversation_id.clone()).or_default();
            // A conversation this client has followed before may have changed messages: pull
            // its changes since the last sync (before filling, so they apply to what the
            // app has, and the fill brings newer messages as they are now). Whatever this
            // client follows was in its last sync or came after it, so nothing before
            // `sync_since` concerns it, except what a pull that a lost connection cut off
            // still owes.
            if t.started() {
                let since = t.changes_owed.map_or(self.sync_since, |owed| owed.min(self.sync_since));
                changed.push((c.conversation_id.clone(), since.max(t.watermark)));
            }
            // A conversation this client has never seen starts after what the user read.
            t.baseline(c.read_seq);
            t.known_up_to(c.last_seq);
            convs.push(c.conversation_id.clone());
        }
        self.version = self.version.max(s.version);
        for (conv, since) in changed {
            if !self.pull_changes(ws, &conv, since).await {
                return false;
            }
        }
        for conv in convs {
            if !self.fill(ws, &conv).await {
                return false;
            }
        }
        if !s.has_more {
            self.listed_all = true;
        }
        if s.has_more {
            let since = self.version;
            return self
                .write(
                    ws,
                    Command::Sync(pb::Sync {
                        since_version: since,
                        limit: 0,
                    }),
                    Pending::Sync,
                )
                .await;
        }
        true
    }

    /// After a (re)connect's sync, pulls what the timelines know they still lack: the
    /// messages of every open gap, and the changes a pull cut off still owes. A sync lists
    /// only the conversations changed since the version of the previous one, and that
    /// version counts from when the previous sync was read, not from when the pulls it
    /// started were answered: a pull that a lost connection cut off is of a conversation
    /// this sync need not list again. Rooms are left to their re-join, which brings their
    /// backlog (and fills from there).
    pub(super) async fn resume_pulls(&mut self, ws: &mut Link) -> bool {
        // The sync just read asked for some already.
        let pulling: HashSet<String> = self
            .pending
            .values()
            .filter_map(|p| match p {
                Pending::Changes(conv) => Some(conv.clone()),
                _ => None,
            })
            .collect();
        let mut owed: Vec<(String, i64)> = self
            .timelines
            .iter()
            .filter(|(conv, _)| !pulling.contains(*conv))
            .filter_map(|(conv, t)| t.changes_owed.map(|since| (conv.clone(), since.max(t.watermark))))
            .collect();
        owed.sort();
        for (conv, since) in owed {
            if !self.pull_changes(ws, &conv, since).await {
                return false;
            }
        }
        let mut gaps: Vec<String> = self
            .timelines
            .iter()
            .filter(|(conv, t)| !conv.starts_with("r:") && t.gap_after().is_some())
            .map(|(conv, _)| conv.clone())
            .collect();
        gaps.sort();
        for conv in gaps {
            if !self.fill(ws, &conv).await {
                return false;
            }
        }
        true
    }

    /// Hands `what` back to the connection loop after `wait` (on a connection that has
    /// ended meanwhile, the next one's resume covers it).
    fn retry_later(&self, what: Retry, wait: Duration) {
        let tx = self.retry_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(what);
        });
    }

    /// Starts a history pull for `conv` if it has a gap and none is in flight.
    pub(super) async fn fill(&mut self, ws: &mut Link, conv: &str) -> bool {
        let Some(t) = self.timelines.get_mut(conv) else {
            return true;
        };
        let Some(after) = t.gap_after() else {
            return true;
        };
        t.filling = true;
        let cmd = Command::History(pb::History {
            conversation_id: conv.to_owned(),
            after_seq: after,
            before_seq: 0,
            limit: FILL_PAGE,
        });
        self.write(ws, cmd, Pending::Fill(conv.to_owned(), after)).await
    }

    /// Asks for a conversation's message changes after `since`.
    async fn pull_changes(&mut self, ws: &mut Link, conv: &str, since: i64) -> bool {
        if let Some(t) = self.timelines.get_mut(conv) {
            t.changes_owed = Some(since);
        }
        let cmd = Command::GetChanges(pb::GetChanges {
            conversation_id: conv.to_owned(),
            since_version: since,
            limit: 100,
        });
        self.write(ws, cmd, Pending::Changes(conv.to_owned())).await
    }

    /// A change pushed live goes through its conversation's timeline.
    fn on_change(&mut self, c: MessageChange) {
        let out = self.timelines.entry(c.conversation_id.clone()).or_default().change(c);
        self.deliver(out);
    }

    /// Hands events to the app; messages of the user's system conversation (`s:<user>`) are
    /// their notifications.
    fn deliver(&self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Message(m) if m.conversation_id.starts_with("s:") => self.emit(Event::Notification {
                    id: m.msg_id,
                    content: m.content,
                    created_at: m.created_at,
                    conversation_id: Some(m.conversation_id),
                    seq: Some(m.seq),
                    msg_type: Some(m.msg_type),
                }),
                e => self.emit(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_pull_waits_longer_each_time_and_at_least_what_the_server_asks() {
        let secs = |n, after| fill_retry_wait(n, after).as_millis();
        assert_eq!(
            [secs(0, 0), secs(1, 0), secs(2, 0), secs(5, 0), secs(40, 0)],
            [1_000, 2_000, 4_000, 30_000, 30_000]
        );
        assert_eq!(secs(0, 5_000), 5_000);
        assert_eq!(secs(3, -1), 8_000);
    }
}
