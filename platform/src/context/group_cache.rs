//! Each node's memory of who is in a group, so a message to a group of 10,000 costs one
//! primary-key read of the group row, not a read of 10,000 member rows.
//!
//! Every change to a group or its members (on any node) stamps the group row with a new
//! `version`. A snapshot is used only while the row still carries the version it was built
//! at, and the row is read on every use: a member removed on another node stops receiving
//! with the next message after the removal committed, with no TTL to wait out. Loads of one
//! group are serialised, so a burst of sends after a change loads its members once. The
//! map of groups is a size-bounded `quick_cache`: past `MAX_GROUPS` the least used groups
//! are dropped (and reloaded on their next use); there is no TTL, the version decides.

use std::collections::HashMap;
use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::domain::{Group, GroupRole, UnixMillis};
use crate::ids::{AppId, GroupId, UserId};
use crate::store::{Store, StoreResult};

/// Groups kept; past it, one is dropped for each new one (reloaded on its next use).
const MAX_GROUPS: usize = 4096;

/// What a send needs to know about one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberState {
    pub role: GroupRole,
    pub muted_until: Option<UnixMillis>,
}

/// A group and its members at one version.
#[derive(Debug)]
pub struct GroupSnapshot {
    pub group: Group,
    members: HashMap<UserId, MemberState>,
    /// Every member, sorted: the fan-out list.
    ids: Vec<UserId>,
}

impl GroupSnapshot {
    pub fn member(&self, user: &UserId) -> Option<&MemberState> {
        self.members.get(user)
    }

    pub fn ids(&self) -> &[UserId] {
        &self.ids
    }

    /// The owner and the admins.
    pub fn admins(&self) -> Vec<UserId> {
        self.ids
            .iter()
            .filter(|u| self.members.get(*u).is_some_and(|m| m.role.is_admin()))
            .cloned()
            .collect()
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<GroupSnapshot>>>>;

pub(crate) struct MemberCache {
    slots: Cache<(AppId, GroupId), Slot>,
}

impl Default for MemberCache {
    fn default() -> Self {
        Self {
            slots: Cache::new(MAX_GROUPS),
        }
    }
}

impl MemberCache {
    fn slot(&self, app: &AppId, group: &GroupId) -> Slot {
        let key = (app.clone(), group.clone());
        let Ok(slot) = self
            .slots
            .get_or_insert_with(&key, || Ok::<_, std::convert::Infallible>(Slot::default()));
        slot
    }

    /// The group as it is now with its members; `None` when it does not exist.
    pub(crate) async fn snapshot(
        &self,
        store: &dyn Store,
        app: &AppId,
        group: &GroupId,
    ) -> StoreResult<Option<Arc<GroupSnapshot>>> {
        let Some(row) = store.group(app, group).await? else {
            self.forget(app, group);
            return Ok(None);
        };
        let slot = self.slot(app, group);
        let mut held = slot.lock().await;
        if let Some(s) = held.as_ref() {
            // Versions only grow: a snapshot at least as new as the row is current.
            if s.group.version >= row.version {
                return Ok(Some(s.clone()));
            }
        }
        let members = store.group_members(app, group, None, u32::MAX).await?;
        let ids: Vec<UserId> = members.iter().map(|m| m.user_id.clone()).collect();
        let members = members
            .into_iter()
            .map(|m| {
                (
                    m.user_id,
                    MemberState {
                        role: m.role,
                        muted_until: m.muted_until,
                    },
                )
            })
            .collect();
        let snapshot = Arc::new(GroupSnapshot {
            group: row,
            members,
            ids,
        });
        *held = Some(snapshot.clone());
        Ok(Some(snapshot))
    }

    /// Drops what this node remembers of a group (after a change made here).
    pub(crate) fn forget(&self, app: &AppId, group: &GroupId) {
        self.slots.remove(&(app.clone(), group.clone()));
    }
}
