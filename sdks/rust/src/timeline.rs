//! Exactly once, in order: each conversation's messages go to the app by seq, with no gaps
//! and no repeats, whether they came as live pushes, sync-driven history pulls or a room's
//! backlog — and whatever order those arrive in.
//!
//! Changes to messages (edits, recalls, extensions, reactions, deletes for this user) go to
//! the app once each, too. Each carries the app's change version; a message carries the
//! version of its last change. So a change is handed out unless it was handed out before
//! (`applied`), came before the last pull of changes (`watermark`), or is already part of
//! the message as it was delivered (`reflected`); a change to a message not delivered yet
//! waits for it (`held`) and goes out right after it, if the message did not already have it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::types::{ChangeKind, Event, Message, MessageChange};

/// Most messages held back waiting for a gap to fill, per conversation.
const MAX_BUFFERED: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Highest seq handed to the app; everything up to it has been delivered (or was
    /// before this client's baseline). `None` until the first sighting sets a baseline.
    delivered: Option<i64>,
    /// Highest seq known to exist (from pushes or the conversation list).
    target: i64,
    /// Arrived but not yet deliverable (a gap before them).
    buffer: BTreeMap<i64, Message>,
    /// A history pull is in flight (or waits to be asked again after a refusal).
    pub(crate) filling: bool,
    /// History pulls refused in a row with a retryable code: how long the next waits.
    pub(crate) fill_refusals: u32,
    // ---- message lifecycle ----
    /// Seqs up to this that a history page passed over do not exist for this user (deleted
    /// for them, or sent before they joined): skipped, not waited for.
    skip_through: i64,
    /// Changes of messages not delivered yet, by seq.
    held: BTreeMap<i64, Vec<MessageChange>>,
    /// Seq -> version, for delivered messages that had changed before they were delivered.
    reflected: HashMap<i64, i64>,
    /// Versions handed out (or found already in their message) above `watermark`.
    applied: BTreeSet<i64>,
    /// Every change up to this version was pulled and handled.
    pub(crate) watermark: i64,
    /// Seqs deleted for this user: their later changes are dropped.
    deleted: HashSet<i64>,
    /// A pull of changes after this version was asked for and has not reached its last
    /// page (the connection was lost first, or the pull was refused): still owed.
    pub(crate) changes_owed: Option<i64>,
}

impl Timeline {
    /// Sets where delivery starts if nothing set it yet: messages after `seq` are delivered.
    pub(crate) fn baseline(&mut self, seq: i64) {
        if self.delivered.is_none() {
            self.delivered = Some(seq.max(0));
        }
    }

    /// Whether anything was delivered or baselined yet.
    pub(crate) fn started(&self) -> bool {
        self.delivered.is_some()
    }

    /// The conversation is known to reach `last_seq`.
    pub(crate) fn known_up_to(&mut self, last_seq: i64) {
        self.target = self.target.max(last_seq);
    }

    /// Offers a message; returns what can be handed out now, in order.
    pub(crate) fn offer(&mut self, m: Message) -> Vec<Event> {
        self.baseline(m.seq - 1);
        self.insert(m);
        self.drain()
    }

    fn insert(&mut self, m: Message) {
        self.target = self.target.max(m.seq);
        let delivered = self.delivered.unwrap_or(0);
        if m.seq > delivered && self.buffer.len() < MAX_BUFFERED {
            self.buffer.insert(m.seq, m);
        }
    }

    /// Takes in a page of history asked for with `after_seq = after`: seqs between `after`
    /// and the page's last that are not in it are not visible to this user and are skipped.
    pub(crate) fn offer_page(&mut self, after: i64, page: Vec<Message>) -> Vec<Event> {
        let Some(top) = page.iter().map(|m| m.seq).max() else {
            return self.skip_gap();
        };
        self.baseline(after);
        for m in page {
            self.insert(m);
        }
        self.skip_through = self.skip_through.max(top);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut delivered = self.delivered.unwrap_or(0);
        loop {
            let next = delivered + 1;
            if let Some(m) = self.buffer.remove(&next) {
                delivered = next;
                let (seq, version) = (m.seq, m.version);
                out.push(Event::Message(m));
                if version > self.watermark {
                    self.reflected.insert(seq, version);
                }
                for c in self.held.remove(&seq).unwrap_or_default() {
                    if c.version > version {
                        out.extend(self.handle(c, seq));
                    } else {
                        self.applied.insert(c.version); // the message came with it
                    }
                }
            } else if next <= self.skip_through {
                delivered = next;
                self.held.remove(&next);
            } else {
                break;
            }
        }
        self.delivered = Some(delivered);
        out
    }

    /// Where a history pull should start, if messages are missing and none is in flight.
    pub(crate) fn gap_after(&self) -> Option<i64> {
        let delivered = self.delivered?;
        (!self.filling && delivered < self.target).then_some(delivered)
    }

    /// A room was joined: its backlog starts after `start` and it reaches `last_seq`. What
    /// came before the backlog is not shown (a room delivers to those in it); if this
    /// timeline is ahead of the room, the room's seqs restarted and so does the timeline.
    pub(crate) fn joined_at(&mut self, start: i64, last_seq: i64) {
        match self.delivered {
            Some(d) if d > last_seq => {
                *self = Self::default();
                self.delivered = Some(start.max(0));
            }
            Some(d) if d < start => {
                self.delivered = Some(start);
                self.buffer.retain(|seq, _| *seq > start);
            }
            Some(_) => {}
            None => self.delivered = Some(start.max(0)),
        }
        self.target = self.target.max(last_seq);
    }

    /// A pull found nothing after the current position although more was expected (the
    /// user cannot see those seqs, e.g. before they joined a group): skip to what exists.
    pub(crate) fn skip_gap(&mut self) -> Vec<Event> {
        let next = self.buffer.keys().next().copied().map_or(self.target, |s| s - 1);
        self.skip_through = self.skip_through.max(next);
        self.drain()
    }

    /// Takes in a change (pushed or pulled); returns what to hand out now.
    pub(crate) fn change(&mut self, c: MessageChange) -> Vec<Event> {
        if c.version <= self.watermark || self.applied.contains(&c.version) {
            return Vec::new();
        }
        match self.delivered {
            Some(d) if c.seq > d => {
                let held = self.held.entry(c.seq).or_default();
                if !held.iter().any(|h| h.version == c.version) {
                    held.push(c);
                    held.sort_by_key(|h| h.version);
                }
                Vec::new()
            }
            _ => {
                let seq = c.seq;
                self.handle(c, seq)
            }
        }
    }

    /// A change of a message that is delivered (or was never to be delivered here).
    fn handle(&mut self, c: MessageChange, seq: i64) -> Vec<Event> {
        if !self.applied.insert(c.version) {
            return Vec::new();
        }
        if self.deleted.contains(&seq) || self.reflected.get(&seq).is_some_and(|v| *v >= c.version) {
            return Vec::new();
        }
        if c.kind == ChangeKind::Deleted {
            self.deleted.insert(seq);
        }
        vec![Event::Changed(c)]
    }

    /// Every change up to `version` has been pulled: forget what only served to recognise
    /// those.
    pub(crate) fn pulled_through(&mut self, version: i64) {
        if version <= self.watermark {
            return;
        }
        self.watermark = version;
        self.applied = self.applied.split_off(&(version + 1));
        self.reflected.retain(|_, v| *v > version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: i64) -> Message {
        Message {
            msg_id: format!("m{seq}"),
            conversation_id: "d:a:b".into(),
            seq,
            sender: Some("a".into()),
            client_msg_id: format!("c{seq}"),
            msg_type: "text".into(),
            content: serde_json::json!({"text": seq.to_string()}),
            created_at: 0,
            recalled: false,
            edited_at: None,
            reply_to: None,
            quoted: None,
            version: 0,
            extensions: Vec::new(),
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_all: false,
        }
    }

    fn at_version(seq: i64, version: i64) -> Message {
        Message { version, ..msg(seq) }
    }

    fn change(seq: i64, version: i64) -> MessageChange {
        MessageChange {
            conversation_id: "d:a:b".into(),
            msg_id: format!("m{seq}"),
            seq,
            version,
            by: Some("b".into()),
            changed_at: 0,
            kind: ChangeKind::Reaction {
                reaction: "+1".into(),
                user_id: "b".into(),
                added: true,
                count: 1,
            },
        }
    }

    fn seqs(v: Vec<Event>) -> Vec<i64> {
        v.into_iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.seq),
                _ => None,
            })
            .collect()
    }

    /// What went out: messages as `m<seq>`, changes as `c<version>`.
    fn trace(v: Vec<Event>) -> Vec<String> {
        v.into_iter()
            .map(|e| match e {
                Event::Message(m) => format!("m{}", m.seq),
                Event::Changed(c) => format!("c{}", c.version),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn duplicates_are_dropped_and_gaps_wait() {
        let mut t = Timeline::default();
        t.baseline(0);
        assert_eq!(seqs(t.offer(msg(1))), vec![1]);
        assert_eq!(seqs(t.offer(msg(1))), Vec::<i64>::new());
        assert_eq!(seqs(t.offer(msg(3))), Vec::<i64>::new());
        assert_eq!(t.gap_after(), Some(1));
        assert_eq!(seqs(t.offer(msg(2))), vec![2, 3]);
        assert_eq!(t.gap_after(), None);
    }

    #[test]
    fn a_first_push_sets_the_baseline() {
        let mut t = Timeline::default();
        assert_eq!(seqs(t.offer(msg(7))), vec![7]);
        assert_eq!(seqs(t.offer(msg(6))), Vec::<i64>::new());
    }

    #[test]
    fn a_pull_that_starts_later_skips_what_the_user_cannot_see() {
        let mut t = Timeline::default();
        t.baseline(10);
        t.known_up_to(21);
        assert_eq!(seqs(t.offer(msg(21))), Vec::<i64>::new());
        assert_eq!(t.gap_after(), Some(10));
        // The history answer begins at 20 (the user rejoined after 19): 11..=19 are passed
        // over, 20 and the held 21 go out.
        assert_eq!(seqs(t.offer_page(10, vec![msg(20)])), vec![20, 21]);
        assert_eq!(t.gap_after(), None);
    }

    #[test]
    fn a_known_end_asks_for_history_and_an_empty_pull_skips() {
        let mut t = Timeline::default();
        t.baseline(2);
        t.known_up_to(5);
        assert_eq!(t.gap_after(), Some(2));
        assert_eq!(seqs(t.skip_gap()), Vec::<i64>::new());
        assert_eq!(t.gap_after(), None);
        assert_eq!(seqs(t.offer(msg(6))), vec![6]);
    }

    #[test]
    fn seqs_a_page_passes_over_are_skipped() {
        let mut t = Timeline::default();
        t.baseline(1);
        t.known_up_to(6);
        // A live 6 waits for the gap; the page after 1 holds 3 and 5 (2 and 4 are deleted
        // for this user): 3, 5 and the buffered 6 go out.
        assert_eq!(seqs(t.offer(msg(6))), Vec::<i64>::new());
        assert_eq!(seqs(t.offer_page(1, vec![msg(3), msg(5)])), vec![3, 5, 6]);
        assert_eq!(t.gap_after(), None);
        // A page stops at its last message: what lies beyond it is still waited for.
        let mut t = Timeline::default();
        t.baseline(0);
        t.known_up_to(9);
        assert_eq!(seqs(t.offer_page(0, vec![msg(1), msg(2)])), vec![1, 2]);
        assert_eq!(t.gap_after(), Some(2));
    }

    #[test]
    fn each_change_goes_out_once() {
        let mut t = Timeline::default();
        t.baseline(0);
        t.offer(msg(1));
        assert_eq!(trace(t.change(change(1, 10))), vec!["c10"]);
        assert_eq!(trace(t.change(change(1, 10))), Vec::<String>::new(), "pushed twice");
        // A pull from before: what went out is not repeated, what is new goes out.
        let pulled: Vec<String> = [change(1, 10), change(1, 11)]
            .into_iter()
            .flat_map(|c| trace(t.change(c)))
            .collect();
        assert_eq!(pulled, vec!["c11"]);
        t.pulled_through(11);
        assert_eq!(
            trace(t.change(change(1, 11))),
            Vec::<String>::new(),
            "below the watermark"
        );
        assert_eq!(trace(t.change(change(1, 12))), vec!["c12"]);
    }

    #[test]
    fn a_change_waits_for_its_message_and_is_dropped_if_the_message_has_it() {
        let mut t = Timeline::default();
        t.baseline(0);
        t.known_up_to(3);
        // Changes to 2 and 3 arrive before they do (a fill is in flight).
        assert!(t.change(change(2, 20)).is_empty());
        assert!(t.change(change(3, 30)).is_empty());
        assert!(t.change(change(3, 31)).is_empty());
        // 2 comes as it was before its change, 3 as it was after 30: the change to 2 and 31
        // follow their messages; 30 is already in 3.
        assert_eq!(
            trace(t.offer_page(0, vec![msg(1), msg(2), at_version(3, 30)])),
            vec!["m1", "m2", "c20", "m3", "c31"]
        );
        // A pull that repeats them hands out nothing.
        for v in [20, 30, 31] {
            assert!(t.change(change(if v == 20 { 2 } else { 3 }, v)).is_empty(), "{v}");
        }
    }

    #[test]
    fn changes_of_a_message_deleted_here_stop() {
        let mut t = Timeline::default();
        t.baseline(0);
        t.offer(msg(1));
        let deleted = MessageChange {
            kind: ChangeKind::Deleted,
            ..change(1, 5)
        };
        assert_eq!(trace(t.change(deleted)), vec!["c5"]);
        assert!(t.change(change(1, 6)).is_empty());
        // A change held for a message that a page then passes over is dropped with it.
        t.known_up_to(3);
        assert!(t.change(change(2, 7)).is_empty());
        assert_eq!(trace(t.offer_page(1, vec![msg(3)])), vec!["m3"]);
    }

    #[test]
    fn a_room_rejoin_shows_the_backlog_once_and_skips_the_rest() {
        let mut t = Timeline::default();
        // First join: backlog 4..=5 of a room at 5.
        t.joined_at(3, 5);
        assert_eq!(seqs(t.offer(msg(4))), vec![4]);
        assert_eq!(seqs(t.offer(msg(5))), vec![5]);
        // A short absence: the backlog 4..=8 overlaps what was shown; 6..=8 are new.
        t.joined_at(3, 8);
        for s in 4..=8 {
            t.offer(msg(s));
        }
        assert_eq!(t.delivered, Some(8));
        // A long absence: the backlog is 50..=60; 9..=49 are skipped, not pulled.
        t.joined_at(49, 60);
        assert_eq!(t.gap_after(), Some(49));
        assert_eq!(seqs(t.offer(msg(50))), vec![50]);
        // The room was made again: its seqs restart at 1.
        t.joined_at(0, 1);
        assert_eq!(seqs(t.offer(msg(1))), vec![1]);
    }
}
