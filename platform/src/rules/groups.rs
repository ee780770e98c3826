//! Who may do what in a group: pure functions of the actor's standing, the target's role
//! and the group's policy, so the whole permission matrix is in one place (docs/groups.md
//! has it as a table) and is tested without a database; and what a message to a group must
//! pass (`check_send`), which the pipeline asks of a member snapshot.

use crate::context::group_cache::GroupSnapshot;
use crate::domain::{GroupRole, JoinPolicy, Sender, Source, UnixMillis, MAX_MENTIONS};
use crate::error::DeliveryError;
use crate::ids::UserId;

/// The actor of a group operation, as the rules see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The app's backend: may do anything the data allows.
    Server,
    Member(GroupRole),
    /// A user of the app who is not a member.
    Outsider,
}

impl Standing {
    fn is_admin(self) -> bool {
        matches!(self, Self::Server | Self::Member(GroupRole::Owner | GroupRole::Admin))
    }
    fn is_owner(self) -> bool {
        matches!(self, Self::Server | Self::Member(GroupRole::Owner))
    }
}

/// The one limit on how many users a message may mention: every door checks it before it
/// parses the ids, and the pipeline again before it looks at the group.
pub fn check_mention_count(mentions: usize) -> Result<(), DeliveryError> {
    if mentions > MAX_MENTIONS {
        return Err(DeliveryError::InvalidArgument(format!(
            "a message may mention at most {MAX_MENTIONS} users"
        )));
    }
    Ok(())
}

/// Name, avatar, announcement, metadata, join policy and `mute_all`.
pub fn may_update_profile(s: Standing) -> bool {
    s.is_admin()
}

pub fn may_dismiss(s: Standing) -> bool {
    s.is_owner()
}

/// Making members admins and admins members.
pub fn may_set_roles(s: Standing) -> bool {
    s.is_owner()
}

pub fn may_transfer(s: Standing) -> bool {
    s.is_owner()
}

/// Listing, accepting and declining join requests.
pub fn may_answer_requests(s: Standing) -> bool {
    s.is_admin()
}

/// The member list, a member's details, read receipts.
pub fn may_see_members(s: Standing) -> bool {
    !matches!(s, Standing::Outsider)
}

/// Removing or muting a member whose role is `target`: admins act on members, the owner on
/// admins and members, the server API on anyone but the owner. Nobody acts on the owner.
pub fn may_manage(s: Standing, target: GroupRole) -> bool {
    match (s, target) {
        (_, GroupRole::Owner) => false,
        (Standing::Server | Standing::Member(GroupRole::Owner), _) => true,
        (Standing::Member(GroupRole::Admin), GroupRole::Member) => true,
        _ => false,
    }
}

/// What an invitation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteEffect {
    /// The invited users become members at once.
    Add,
    /// Each invited user gets a join request for the admins to answer.
    Request,
    Refuse,
}

/// The server API and admins add at once whatever the policy; a plain member's invitation
/// adds at once in `free` and `invite_only` groups and becomes a join request in `approval`
/// groups; a non-member cannot invite.
pub fn invite_effect(s: Standing, policy: JoinPolicy) -> InviteEffect {
    match s {
        Standing::Outsider => InviteEffect::Refuse,
        s if s.is_admin() => InviteEffect::Add,
        _ => match policy {
            JoinPolicy::Free | JoinPolicy::InviteOnly => InviteEffect::Add,
            JoinPolicy::Approval => InviteEffect::Request,
        },
    }
}

/// Mentioning everyone from the SDK: the owner and admins (the server API may always).
pub fn may_mention_all(role: GroupRole) -> bool {
    role.is_admin()
}

/// Speaking in a group whose `mute_all` is on.
pub fn may_speak_when_muted(role: GroupRole) -> bool {
    role.is_admin()
}

/// Whether `sender` may send to the group with these options: a member, not muted there,
/// not silenced by `mute_all`; @all from the SDK by the owner and admins only; mentions
/// only of members.
pub fn check_send(
    snapshot: &GroupSnapshot,
    sender: &Sender,
    mentions: &[UserId],
    mention_all: bool,
    source: Source,
    now: UnixMillis,
) -> Result<(), DeliveryError> {
    if let Sender::User(u) = sender {
        let m = snapshot
            .member(u)
            .ok_or_else(|| DeliveryError::Forbidden("the sender is not a member of the group".into()))?;
        if let Some(until) = m.muted_until.filter(|t| *t > now) {
            return Err(DeliveryError::MemberMuted { until });
        }
        if snapshot.group.mute_all && !may_speak_when_muted(m.role) {
            return Err(DeliveryError::GroupMuted);
        }
        if mention_all && source == Source::Sdk && !may_mention_all(m.role) {
            return Err(DeliveryError::Forbidden(
                "only the owner and admins may mention everyone".into(),
            ));
        }
    }
    check_mention_count(mentions.len())?;
    let strangers: Vec<&str> = mentions
        .iter()
        .filter(|u| snapshot.member(u).is_none())
        .map(UserId::as_str)
        .collect();
    if !strangers.is_empty() {
        return Err(DeliveryError::InvalidArgument(format!(
            "only members can be mentioned; not members: {}",
            strangers.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use GroupRole::{Admin, Owner};
    use Standing::{Member, Outsider, Server};

    const EVERYONE: [Standing; 5] = [
        Server,
        Member(Owner),
        Member(Admin),
        Member(GroupRole::Member),
        Outsider,
    ];

    fn who(f: impl Fn(Standing) -> bool) -> Vec<Standing> {
        EVERYONE.into_iter().filter(|s| f(*s)).collect()
    }

    #[test]
    fn owner_only_operations() {
        for f in [may_dismiss, may_set_roles, may_transfer] {
            assert_eq!(who(f), vec![Server, Member(Owner)]);
        }
    }

    #[test]
    fn admin_operations() {
        for f in [may_update_profile, may_answer_requests] {
            assert_eq!(who(f), vec![Server, Member(Owner), Member(Admin)]);
        }
        assert_eq!(
            who(may_see_members),
            vec![Server, Member(Owner), Member(Admin), Member(GroupRole::Member)]
        );
    }

    #[test]
    fn nobody_removes_the_owner_and_admins_remove_only_members() {
        assert!(who(|s| may_manage(s, Owner)).is_empty());
        assert_eq!(who(|s| may_manage(s, Admin)), vec![Server, Member(Owner)]);
        assert_eq!(
            who(|s| may_manage(s, GroupRole::Member)),
            vec![Server, Member(Owner), Member(Admin)]
        );
    }

    #[test]
    fn invitations_follow_the_policy() {
        use InviteEffect::*;
        for policy in [JoinPolicy::Free, JoinPolicy::Approval, JoinPolicy::InviteOnly] {
            for s in [Server, Member(Owner), Member(Admin)] {
                assert_eq!(invite_effect(s, policy), Add, "{s:?} {policy:?}");
            }
            assert_eq!(invite_effect(Outsider, policy), Refuse);
        }
        assert_eq!(invite_effect(Member(GroupRole::Member), JoinPolicy::Free), Add);
        assert_eq!(invite_effect(Member(GroupRole::Member), JoinPolicy::InviteOnly), Add);
        assert_eq!(invite_effect(Member(GroupRole::Member), JoinPolicy::Approval), Request);
    }

    #[test]
    fn speaking_and_mentioning_everyone() {
        assert!(may_mention_all(Owner) && may_mention_all(Admin) && !may_mention_all(GroupRole::Member));
        assert!(may_speak_when_muted(Admin) && !may_speak_when_muted(GroupRole::Member));
    }
}
