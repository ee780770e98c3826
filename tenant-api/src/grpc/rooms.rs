//! gRPC `Rooms` and `Broadcasts`: each method parses its request (`crate::input`), calls
//! the operation of `tern_platform::rooms` / `broadcasts` (or its paged form in
//! `tern_platform::service`) as the REST handler does, and converts the domain values back.

use tern_platform::domain::now_ms;
use tern_platform::proto::server_v1 as pb;
use tern_platform::rooms;
use tern_platform::service::{self, moderation::restriction_end};
use tonic::Request;

use super::convert::{self, struct_to_json};
use super::services::{app, content, ok, Answer, Server};
use crate::error::ApiError;
use crate::input;

#[tonic::async_trait]
impl pb::rooms_server::Rooms for Server {
    async fn create_room(&self, req: Request<pb::CreateRoomRequest>) -> Answer<pb::Room> {
        let app = app(&req)?;
        let r = req.into_inner();
        let created = async {
            let id = input::room(&r.id)?;
            let metadata = r.metadata.map(struct_to_json);
            Ok::<_, ApiError>(rooms::create(&self.state.pipeline, &app, id, r.name, metadata).await?)
        };
        ok(created.await, convert::room)
    }

    async fn get_room(&self, req: Request<pb::RoomRequest>) -> Answer<pb::Room> {
        let app = app(&req)?;
        let room = async {
            let id = input::room(&req.into_inner().room_id)?;
            Ok::<_, ApiError>(rooms::get(&self.state.pipeline, &app, &id).await?)
        };
        ok(room.await, convert::room)
    }

    async fn list_rooms(&self, req: Request<pb::ListRoomsRequest>) -> Answer<pb::RoomsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let (cursor, limit) = convert::page(&r.cursor, r.limit);
        let page = service::rooms::list_page(&self.state.pipeline, &app, cursor, limit)
            .await
            .map_err(ApiError::from);
        ok(page, |page| pb::RoomsResponse {
            rooms: page.items.into_iter().map(convert::room).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn update_room(&self, req: Request<pb::UpdateRoomRequest>) -> Answer<pb::Room> {
        let app = app(&req)?;
        let r = req.into_inner();
        let updated = async {
            let id = input::room(&r.room_id)?;
            let metadata = r.metadata.map(struct_to_json);
            Ok::<_, ApiError>(rooms::update(&self.state.pipeline, &app, &id, r.name, metadata).await?)
        };
        ok(updated.await, convert::room)
    }

    async fn delete_room(&self, req: Request<pb::RoomRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let dismissed = async {
            let id = input::room(&req.into_inner().room_id)?;
            Ok::<_, ApiError>(rooms::dismiss(&self.state.pipeline, &app, &id).await?)
        };
        ok(dismissed.await, |_| pb::Empty {})
    }

    async fn remove_user(&self, req: Request<pb::RoomUserRequest>) -> Answer<pb::RemoveRoomUserResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let removed = async {
            let (id, user) = (input::room(&r.room_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(rooms::remove_user(&self.state.pipeline, &app, &id, &user).await?)
        };
        ok(removed.await, |sessions| pb::RemoveRoomUserResponse { sessions })
    }

    async fn mute_user(&self, req: Request<pb::MuteRoomUserRequest>) -> Answer<pb::RoomMute> {
        let app = app(&req)?;
        let r = req.into_inner();
        let muted = async {
            let (id, user) = (input::room(&r.room_id)?, input::user(&r.user_id)?);
            let until = restriction_end(r.until, now_ms())?;
            Ok::<_, ApiError>(rooms::mute(&self.state.pipeline, &app, &id, &user, until).await?)
        };
        ok(muted.await, convert::room_mute)
    }

    async fn unmute_user(&self, req: Request<pb::RoomUserRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let unmuted = async {
            let (id, user) = (input::room(&r.room_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(rooms::unmute(&self.state.pipeline, &app, &id, &user).await?)
        };
        ok(unmuted.await, |()| pb::Empty {})
    }

    async fn list_mutes(&self, req: Request<pb::ListRoomMutesRequest>) -> Answer<pb::RoomMutesResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let id = input::room(&r.room_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(service::rooms::mutes_page(&self.state.pipeline, &app, &id, cursor, limit).await?)
        };
        ok(page.await, |page| pb::RoomMutesResponse {
            mutes: page.items.into_iter().map(convert::room_mute).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl pb::broadcasts_server::Broadcasts for Server {
    async fn start_broadcast(&self, req: Request<pb::StartBroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        let r = req.into_inner();
        let started = async {
            let request = input::broadcast_request(
                &r.r#type,
                content(r.content),
                (!r.client_msg_id.is_empty()).then_some(r.client_msg_id.as_str()),
                (!r.users.is_empty()).then_some(r.users.as_slice()),
            )?;
            let st = &self.state;
            Ok::<_, ApiError>(service::broadcasts::start(&st.pipeline, &app, request, &st.broadcast_wake).await?)
        };
        ok(started.await, convert::broadcast)
    }

    async fn get_broadcast(&self, req: Request<pb::BroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        let id = req.into_inner().broadcast_id;
        let job = tern_platform::broadcasts::get(&self.state.pipeline, &app, &id)
            .await
            .map_err(ApiError::from);
        ok(job, convert::broadcast)
    }

    async fn list_broadcasts(&self, req: Request<pb::ListBroadcastsRequest>) -> Answer<pb::BroadcastsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let (cursor, limit) = convert::page(&r.cursor, r.limit);
        let page = service::broadcasts::list_page(&self.state.pipeline, &app, cursor, limit)
            .await
            .map_err(ApiError::from);
        ok(page, |page| pb::BroadcastsResponse {
            broadcasts: page.items.into_iter().map(convert::broadcast).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn cancel_broadcast(&self, req: Request<pb::BroadcastRequest>) -> Answer<pb::Broadcast> {
        let app = app(&req)?;
        let id = req.into_inner().broadcast_id;
        let job = tern_platform::broadcasts::cancel(&self.state.pipeline, &app, &id)
            .await
            .map_err(ApiError::from);
        ok(job, convert::broadcast)
    }
}
