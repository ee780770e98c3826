//! Reading a group: read receipts to the senders, and read counts and readers of a
//! message. (What a group message must pass is `rules::groups::check_send`.)

use super::*;

/// After `reader` read the group from `before` up to `read_seq`: the senders of the newly
/// read messages (of the last `MAX_RECEIPT_MESSAGES` of them) get a `receipt`, in groups
/// small enough to keep read receipts. Failures are logged: the read itself is stored.
pub(crate) async fn tell_senders(p: &Ctx, app: &App, reader: &UserId, id: &GroupId, before: i64, read_seq: i64) {
    let snapshot = match p.group_snapshot(app, id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "no group for a read receipt");
            return;
        }
    };
    if !receipts_kept(app, &snapshot.group) {
        return;
    }
    let span = u32::try_from(read_seq - before)
        .unwrap_or(u32::MAX)
        .min(MAX_RECEIPT_MESSAGES);
    let conversation = ConversationId::Group(id.clone());
    let messages = match p
        .store()
        .messages(&app.id, &conversation, SeqRange::Before(read_seq + 1), span)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the messages of a read receipt");
            return;
        }
    };
    let senders: BTreeSet<UserId> = messages
        .into_iter()
        .filter(|m| m.seq > before)
        .filter_map(|m| m.sender.user().cloned())
        .filter(|u| u != reader && snapshot.member(u).is_some())
        .collect();
    if senders.is_empty() {
        return;
    }
    let senders: Vec<UserId> = senders.into_iter().collect();
    let push = Push::Receipt {
        conversation_id: conversation,
        user_id: reader.clone(),
        read_seq,
    };
    p.publish_to_users(app, &senders, push).await;
}

fn receipts_kept(app: &App, group: &Group) -> bool {
    let limit = app.settings.group_read_receipt_limit;
    limit > 0 && group.member_count as usize <= limit
}

/// The messages `msg_ids` of the group, as `actor` may see them.
async fn group_messages(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg_ids: &[MsgId],
) -> Result<(Group, Vec<Message>), DeliveryError> {
    let group = permitted(p, app, id, actor, rules::may_see_members, "see read receipts").await?;
    if !receipts_kept(app, &group) {
        return Err(DeliveryError::ReceiptsUnavailable(format!(
            "read receipts are kept for groups of at most {} members; this one has {}",
            app.settings.group_read_receipt_limit, group.member_count
        )));
    }
    let joined_seq = match actor {
        Actor::Server => 0,
        Actor::User(u) => p
            .store()
            .group_member(&app.id, id, u)
            .await?
            .map_or(i64::MAX, |m| m.joined_seq),
    };
    let conversation = ConversationId::Group(id.clone());
    let mut out = Vec::with_capacity(msg_ids.len());
    for msg_id in msg_ids {
        let m = p
            .store()
            .message(&app.id, msg_id)
            .await?
            .filter(|m| m.conversation_id == conversation && m.seq > joined_seq)
            .ok_or(DeliveryError::NotFound("message"))?;
        out.push(m);
    }
    Ok((group, out))
}

/// Whether `pos` counts for `m`: a member other than its sender, there when it was sent.
fn counts_for(pos: &ReadPosition, m: &Message) -> bool {
    m.sender.user() != Some(&pos.user_id) && pos.joined_seq < m.seq
}

/// A read-count query names 1 to `MAX_READ_COUNT_MESSAGES` messages (a door may ask before
/// it parses the ids).
pub fn check_read_count_batch(messages: usize) -> Result<(), DeliveryError> {
    if !(1..=MAX_READ_COUNT_MESSAGES).contains(&messages) {
        return Err(DeliveryError::InvalidArgument(format!(
            "msg_ids must hold 1 to {MAX_READ_COUNT_MESSAGES} messages"
        )));
    }
    Ok(())
}

/// Per-message read counts, in the order asked (members; the server API), for groups up
/// to the app's `group_read_receipt_limit`.
pub async fn read_counts(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg_ids: &[MsgId],
) -> Result<Vec<ReadCount>, DeliveryError> {
    check_read_count_batch(msg_ids.len())?;
    let (_, messages) = group_messages(p, app, actor, id, msg_ids).await?;
    let positions = p.store().group_read_positions(&app.id, id).await?;
    Ok(messages
        .into_iter()
        .map(|m| {
            let (read, unread) = positions
                .iter()
                .filter(|pos| counts_for(pos, &m))
                .fold(
                    (0, 0),
                    |(r, u), pos| {
                        if pos.read_seq >= m.seq {
                            (r + 1, u)
                        } else {
                            (r, u + 1)
                        }
                    },
                );
            ReadCount {
                msg_id: m.msg_id,
                seq: m.seq,
                read,
                unread,
            }
        })
        .collect())
}

/// Who has read one message (or, with `unread`, who has not), by user id, paged.
#[allow(clippy::too_many_arguments)]
pub async fn readers(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg_id: &MsgId,
    unread: bool,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<UserId>, DeliveryError> {
    let (_, messages) = group_messages(p, app, actor, id, std::slice::from_ref(msg_id)).await?;
    let Some(m) = messages.first() else {
        return Err(DeliveryError::NotFound("message"));
    };
    let positions = p.store().group_read_positions(&app.id, id).await?;
    Ok(positions
        .into_iter()
        .filter(|pos| counts_for(pos, m) && (pos.read_seq >= m.seq) != unread)
        .filter(|pos| after.is_none_or(|a| pos.user_id > *a))
        .take(limit as usize)
        .map(|pos| pos.user_id)
        .collect())
}
