//! Friends and blocks from the `Client`: the user acts for themselves (docs/friends.md).
//! A request to this user, or the acceptance of theirs, arrives as `Event::Notification`
//! whose `content["type"]` is `"friend_request"` or `"friend_accepted"`.

use crate::client::{unexpected, Client};
use crate::proto as pb;
use crate::types::ClientError;

use pb::client_frame::Command;
use pb::server_frame::Body;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequestInfo {
    pub from: String,
    pub to: String,
    pub message: String,
    /// `pending`, `accepted` or `declined`.
    pub state: String,
    pub created_at: i64,
}

impl From<pb::FriendRequestInfo> for FriendRequestInfo {
    fn from(r: pb::FriendRequestInfo) -> Self {
        Self {
            from: r.from,
            to: r.to,
            message: r.message,
            state: r.state,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendInfo {
    pub friend_id: String,
    pub remark: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
}

impl From<pb::FriendInfo> for FriendInfo {
    fn from(f: pb::FriendInfo) -> Self {
        Self {
            friend_id: f.friend_id,
            remark: f.remark,
            tags: f.tags,
            created_at: f.created_at,
        }
    }
}

impl Client {
    /// Asks `to` to be friends, with a message of up to 500 characters.
    pub async fn send_friend_request(&self, to: &str, message: &str) -> Result<FriendRequestInfo, ClientError> {
        let cmd = Command::SendFriendRequest(pb::SendFriendRequest {
            to: to.to_owned(),
            message: message.to_owned(),
        });
        match self.request(cmd).await? {
            Body::FriendRequest(r) => Ok(r.into()),
            _ => Err(unexpected()),
        }
    }

    /// Accepts (or, with `accept` false, declines) the pending request from `from`.
    pub async fn answer_friend_request(&self, from: &str, accept: bool) -> Result<FriendRequestInfo, ClientError> {
        let cmd = Command::AnswerFriendRequest(pb::AnswerFriendRequest {
            from: from.to_owned(),
            accept,
        });
        match self.request(cmd).await? {
            Body::FriendRequest(r) => Ok(r.into()),
            _ => Err(unexpected()),
        }
    }

    /// Pending requests to this user, by sender; pass the last sender as `after` for the
    /// next page.
    pub async fn friend_requests(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FriendRequestInfo>, ClientError> {
        let cmd = Command::ListFriendRequests(pb::ListFriendRequests {
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::FriendRequestList(l) => Ok(l.requests.into_iter().map(Into::into).collect()),
            _ => Err(unexpected()),
        }
    }

    /// This user's friends, by id; pass the last friend id as `after` for the next page.
    pub async fn friends(&self, after: Option<&str>, limit: u32) -> Result<Vec<FriendInfo>, ClientError> {
        let cmd = Command::ListFriends(pb::ListFriends {
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::FriendList(l) => Ok(l.friends.into_iter().map(Into::into).collect()),
            _ => Err(unexpected()),
        }
    }

    /// Sets this user's remark (`Some("")` clears it, `None` keeps it) and tags (`None`
    /// keeps them) on a friend.
    pub async fn update_friend(
        &self,
        friend_id: &str,
        remark: Option<&str>,
        tags: Option<&[&str]>,
    ) -> Result<FriendInfo, ClientError> {
        let cmd = Command::UpdateFriend(pb::UpdateFriend {
            friend_id: friend_id.to_owned(),
            remark: remark.map(str::to_owned),
            tags: tags.unwrap_or(&[]).iter().map(|t| (*t).to_owned()).collect(),
            set_tags: tags.is_some(),
        });
        match self.request(cmd).await? {
            Body::Friend(f) => Ok(f.into()),
            _ => Err(unexpected()),
        }
    }

    /// Takes a friend off this user's list; with `both`, this user off theirs too.
    pub async fn delete_friend(&self, friend_id: &str, both: bool) -> Result<(), ClientError> {
        let cmd = Command::DeleteFriend(pb::DeleteFriend {
            friend_id: friend_id.to_owned(),
            both,
        });
        self.request(cmd).await.map(|_| ())
    }

    /// Blocks a user: their direct messages and friend requests to this user fail with
    /// `blocked`.
    pub async fn block(&self, user_id: &str) -> Result<(), ClientError> {
        let cmd = Command::BlockUser(pb::BlockUser {
            user_id: user_id.to_owned(),
        });
        self.request(cmd).await.map(|_| ())
    }

    pub async fn unblock(&self, user_id: &str) -> Result<(), ClientError> {
        let cmd = Command::UnblockUser(pb::UnblockUser {
            user_id: user_id.to_owned(),
        });
        self.request(cmd).await.map(|_| ())
    }

    /// Whom this user blocks, by id; pass the last id as `after` for the next page.
    pub async fn blocks(&self, after: Option<&str>, limit: u32) -> Result<Vec<String>, ClientError> {
        let cmd = Command::ListBlocks(pb::ListBlocks {
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::BlockList(l) => Ok(l.user_ids),
            _ => Err(unexpected()),
        }
    }
}
