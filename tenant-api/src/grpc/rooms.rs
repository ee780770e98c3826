//! gRPC `Rooms` and `Broadcasts`: each method builds the REST input, calls the same
//! operation as the REST handler, and converts the answer back.

use tern_platform::proto::server_v1 as pb;
use tonic::Request;

use super::convert::{json_to_struct, page, struct_to_json};
use super::services::{app, content, ok, Answer, Server};
use crate::rest::{broadcasts, rooms};

fn room(r: rooms::RoomView) -> pb::Room {
    pb::Room {
        id: r.id,
        name: r.name,
        metadata: json_to_struct(r.metadata),
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
        member_count: i64::try_from(r.member_count).unwrap_or(i64::MAX),
        last_seq: r.last_seq,
    }
}

fn mute(m: rooms::RoomMuteView) -> pb::RoomMute {
    pb::RoomMute {
        user_id: m.user_id,
        until: m.until,
    }
}

#[tonic::async_trait]
impl pb::rooms_server::Rooms for Server {
    async fn create_room(&self, req: Request<pb::CreateRoomRequest>) -> Answer<pb::Room> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = rooms::CreateRoom {
            id: r.id,
            name: r.name,
            metadata: r.metadata.map(struct_to_json),
        };
        ok(rooms::create_room(&self.state, &app, body).await, room)
    }

    async fn get_room(&self, req: Request<pb::RoomRequest>) -> Answer<pb::Room> {
        let app = app(&req)?;
        ok(
            rooms::get_room(&self.state, &app, &req.into_inner().room_id).await,
            room,
        )
    }

    async fn list_rooms(&self, req: Request<pb::ListRoomsRequest>) -> Answer<pb::RoomsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            rooms::list_rooms(&self.state, &app, page(r.cursor, r.limit)).await,
            |a| pb::RoomsResponse {
                rooms: a.rooms.into_iter().map(room).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn update_room(&self, req: Request<pb::UpdateRoomRequest>) -> Answer<pb::Room> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = rooms::UpdateRoom {
            name: r.name,
            metadata: r.metadata.map(struct_to_json),
        };
        ok(rooms::update_room(&self.state, &app, &r.room_id, body).await, room)
    }

    async fn delete_room(&self, req: Request<pb::RoomRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        ok(
            rooms::dismiss_room(&self.state, &app, &req.into_inner().room_id).await,
            |_| pb::Empty {},
        )
    }

    async fn remove_user(&self, req: Request<pb::RoomUserRequest>) -> Answer<pb::RemoveRoomUserResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            rooms::remove_room_user(&self.state, &app, &r.room_id, &r.user_id).await,
            |a| pb::RemoveRoomUserResponse { sessions: a.sessions },
        )
    }

    async fn mute_user(&self, req: Request<pb::MuteRoomUserRequest>) -> Answer<pb::RoomMute> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = rooms::MuteInRoom { until: r.until };
        ok(
            rooms::mute_room_user(&self.state, &app, &r.room_id, &r.user_id, body).await,
            mute,
        )
    }

    async fn unmute_user(&self, req: Request<pb::RoomUserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            rooms::unmute_room_user(&self.state, &app, &r.room_id, &r.user_id).await,
            |_| pb::Empty {},
        )
    }

    async fn list_mutes(&self, req: Request<pb::ListRoomMutesRequest>) -> Answer<pb::RoomMutesResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            rooms::list_room_mutes(&self.state, &app, &r.room_id, page(r.cursor, r.limit)).await,
            |a| pb::RoomMutesResponse {
                mutes: a.mutes.into_iter().map(mute).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }
}

fn broadcast(b: broadcasts::BroadcastView) -> pb::Broadcast {
    pb::Broadcast {
        id: b.id,
        status: b.status,
        users_seen: b.users_seen,
        sent: b.sent,
        failed: b.failed,
        created_at: b.created_at,
        error: b.error,
        audience: b.audience,
        total: b.total,
        r#type: b.msg_type,
        content: json_to_struct(b.content),
        updated_at: b.updated_at,
        finished_at: b.finished_at,
    }
}

#[tonic::async_trait]
impl pb::broadcasts_server::Broadcasts for Server {
    async fn start_broadcast(&self, req: Request<pb::StartBroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = broadcasts::StartBroadcast {
            msg_type: r.r#type,
            content: content(r.content),
            client_msg_id: (!r.client_msg_id.is_empty()).then_some(r.client_msg_id),
            users: (!r.users.is_empty()).then_some(r.users),
        };
        ok(broadcasts::start_broadcast(&self.state, &app, body).await, broadcast)
    }

    async fn get_broadcast(&self, req: Request<pb::BroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        ok(
            broadcasts::get_broadcast(&self.state, &app, &req.into_inner().broadcast_id).await,
            broadcast,
        )
    }

    async fn list_broadcasts(&self, req: Request<pb::ListBroadcastsRequest>) -> Answer<pb::BroadcastsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            broadcasts::list_broadcasts(&self.state, &app, page(r.cursor, r.limit)).await,
            |a| pb::BroadcastsResponse {
                broadcasts: a.broadcasts.into_iter().map(broadcast).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn cancel_broadcast(&self, req: Request<pb::BroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        ok(
            broadcasts::cancel_broadcast(&self.state, &app, &req.into_inner().broadcast_id).await,
            broadcast,
        )
    }
}
