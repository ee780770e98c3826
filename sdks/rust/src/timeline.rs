//! Exactly once, in order: each conversation's messages go to the app by seq, with no gaps
//! and no repeats, whether they came as live pushes, sync-driven history pulls or a room's
//! backlog — and whatever order those arrive in.

use std::collections::BTreeMap;

use crate::types::Message;

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
    /// A history pull is in flight.
    pub(crate) filling: bool,
}

impl Timeline {
    /// Sets where delivery starts if nothing set it yet: messages after `seq` are delivered.
    pub(crate) fn baseline(&mut self, seq: i64) {
        if self.delivered.is_none() {
            self.delivered = Some(seq.max(0));
        }
    }

    /// The conversation is known to reach `last_seq`.
    pub(crate) fn known_up_to(&mut self, last_seq: i64) {
        self.target = self.target.max(last_seq);
    }

    /// Offers a message; returns what can be delivered now, in order.
    pub(crate) fn offer(&mut self, m: Message) -> Vec<Message> {
        self.baseline(m.seq - 1);
        self.target = self.target.max(m.seq);
        let delivered = self.delivered.unwrap_or(0);
        if m.seq > delivered && self.buffer.len() < MAX_BUFFERED {
            self.buffer.insert(m.seq, m);
        }
        self.drain()
    }

    fn drain(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let mut delivered = self.delivered.unwrap_or(0);
        while let Some(m) = self.buffer.remove(&(delivered + 1)) {
            delivered = m.seq;
            out.push(m);
        }
        self.delivered = Some(delivered);
        out
    }

    /// Where a history pull should start, if messages are missing and none is in flight.
    pub(crate) fn gap_after(&self) -> Option<i64> {
        let delivered = self.delivered?;
        (!self.filling && delivered < self.target).then_some(delivered)
    }

    /// A pull answered from `seq` on although it asked from an earlier position: the seqs
    /// in between are not the user's to see (they joined the group after them).
    pub(crate) fn skip_before(&mut self, seq: i64) -> Vec<Message> {
        let delivered = self.delivered.unwrap_or(0);
        if seq - 1 > delivered {
            self.delivered = Some(seq - 1);
            self.buffer.retain(|s, _| *s >= seq);
            return self.drain();
        }
        Vec::new()
    }

    /// A pull found nothing after the current position although more was expected (the
    /// user cannot see those seqs, e.g. before they joined a group): skip to what exists.
    pub(crate) fn skip_gap(&mut self) -> Vec<Message> {
        let next = self.buffer.keys().next().copied().map_or(self.target, |s| s - 1);
        self.delivered = Some(self.delivered.unwrap_or(0).max(next));
        self.drain()
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
            mentions: Vec::new(),
            mention_all: false,
        }
    }

    fn seqs(v: Vec<Message>) -> Vec<i64> {
        v.into_iter().map(|m| m.seq).collect()
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
        // The history answer begins at 20 (the user rejoined after 19).
        let mut out = t.skip_before(20);
        out.extend(t.offer(msg(20)));
        assert_eq!(seqs(out), vec![20, 21]);
        assert_eq!(t.gap_after(), None);
        assert!(t.skip_before(5).is_empty(), "an earlier start changes nothing");
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
}
