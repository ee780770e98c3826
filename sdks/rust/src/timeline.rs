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
