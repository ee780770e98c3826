//! Groups and rooms of an app: the app's groups by id (searched by id prefix or part of the
//! name, 50 a page), a group looked up by id (its settings, its members with their roles and
//! mutes, 50 a page by user id), and the app's rooms with how many users are in each now (the
//! live count, refreshed every 5 s), 50 a page by room id. Read-only; changes go through the
//! server API. The platform answers (`tern_platform::{groups, rooms, service::groups}`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::delivery::Actor;
use tern_platform::domain::now_ms;
use tern_platform::error::DeliveryError;
use tern_platform::ids::{GroupId, RoomId, UserId};
use tern_platform::service::groups::MAX_GROUP_QUERY_CHARS;
use tern_platform::{groups, rooms, service};

use super::users::percent;
use crate::auth::{app_scope, Auth};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};

/// Members, or rooms, per page.
const PAGE: u32 = 50;

pub struct GroupView {
    pub id: String,
    /// `g:ID` for the messages explorer's link.
    pub conversation: String,
    pub name: String,
    pub owner: String,
    pub member_count: i64,
    pub join_policy: &'static str,
    pub mute_all: bool,
    pub announcement: String,
    pub created: String,
}

pub struct MemberRow {
    pub user: String,
    pub role: &'static str,
    pub joined: String,
    /// Until when they may not send, if now muted.
    pub muted_until: String,
}

/// One group of the app's list; its id links to its page.
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub member_count: i64,
    pub join_policy: &'static str,
    pub created: String,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    chrome: Chrome,
    query: String,
    group: Option<GroupView>,
    members: Vec<MemberRow>,
    next: Option<String>,
    /// The search of the app's groups (no group chosen): what was typed, and the rows.
    search: String,
    max_search: usize,
    list: Option<Vec<GroupRow>>,
    list_next: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct GroupQuery {
    group: Option<String>,
    /// The search of the app's groups: an id prefix or part of a name.
    q: Option<String>,
    /// The last member of the previous page (a group's page), or the last group of the
    /// previous page (the list).
    after: Option<String>,
}

pub async fn group(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<GroupQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let chrome = Chrome::new(&auth.viewer, format!("Groups of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "groups");
    let query = q.group.as_deref().unwrap_or_default().trim().to_owned();
    let mut page = GroupsPage {
        chrome,
        query,
        group: None,
        members: Vec::new(),
        next: None,
        search: q.q.as_deref().unwrap_or_default().trim().to_owned(),
        max_search: MAX_GROUP_QUERY_CHARS,
        list: None,
        list_next: None,
        error: None,
    };
    let failed = |mut page: GroupsPage, status: StatusCode, e: String| -> Result<Response, PageError> {
        page.error = Some(e);
        let mut r = html(page);
        *r.status_mut() = status;
        Ok(r)
    };
    if page.query.is_empty() {
        page.list = Some(Vec::new());
        let after = match q.after.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => match GroupId::parse(a) {
                Ok(g) => Some(g),
                Err(_) => return failed(page, StatusCode::BAD_REQUEST, "That page link is malformed.".into()),
            },
        };
        let found = match service::groups::search(&st.pipeline, &app, &page.search, after.as_ref(), PAGE).await {
            Ok(found) => found,
            Err(DeliveryError::InvalidArgument(m)) => return failed(page, StatusCode::BAD_REQUEST, m),
            Err(e) => return Err(e.into()),
        };
        page.list_next = (found.len() as u32 == PAGE)
            .then(|| found.last().map(|g| g.id.to_string()))
            .flatten();
        page.list = Some(
            found
                .into_iter()
                .map(|g| GroupRow {
                    id: g.id.to_string(),
                    name: g.name,
                    owner: g.owner.to_string(),
                    member_count: g.member_count,
                    join_policy: g.join_policy.as_str(),
                    created: when(g.created_at),
                })
                .collect(),
        );
        return Ok(html(page));
    }
    let Ok(id) = GroupId::parse(&page.query) else {
        let e = format!("“{}” is not a group id.", page.query);
        return failed(page, StatusCode::BAD_REQUEST, e);
    };
    let after = match q.after.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match UserId::parse(a) {
            Ok(u) => Some(u),
            Err(_) => return failed(page, StatusCode::BAD_REQUEST, "That page link is malformed.".into()),
        },
    };
    let g = match groups::get(&st.pipeline, &app, &id).await {
        Ok(g) => g,
        Err(DeliveryError::NotFound(_)) => {
            return failed(
                page,
                StatusCode::NOT_FOUND,
                "This app has no group with that id.".into(),
            )
        }
        Err(e) => return Err(e.into()),
    };
    let members = groups::members(&st.pipeline, &app, &Actor::Server, &id, after.as_ref(), PAGE).await?;
    page.next = (members.len() as u32 == PAGE)
        .then(|| members.last().map(|m| m.user_id.to_string()))
        .flatten();
    let now = now_ms();
    page.members = members
        .into_iter()
        .map(|m| MemberRow {
            muted_until: if m.is_muted_at(now) {
                when_or(m.muted_until, "")
            } else {
                String::new()
            },
            user: m.user_id.to_string(),
            role: m.role.as_str(),
            joined: when(m.joined_at),
        })
        .collect();
    page.group = Some(GroupView {
        conversation: percent(&format!("g:{}", g.id)),
        id: g.id.to_string(),
        name: g.name,
        owner: g.owner.to_string(),
        member_count: g.member_count,
        join_policy: g.join_policy.as_str(),
        mute_all: g.mute_all,
        announcement: g.announcement,
        created: when(g.created_at),
    });
    Ok(html(page))
}

pub struct RoomRow {
    pub id: String,
    pub conversation: String,
    pub name: String,
    pub online: u64,
    pub last_seq: i64,
    pub origin: &'static str,
    pub created: String,
}

#[derive(Template)]
#[template(path = "rooms.html")]
struct RoomsPage {
    chrome: Chrome,
    rooms: Vec<RoomRow>,
    /// This page's URL, for the live refresh.
    here: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct RoomsQuery {
    /// The last room of the previous page.
    after: Option<String>,
}

pub async fn rooms(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<RoomsQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let after = q
        .after
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| RoomId::parse(a).map_err(|_| PageError::Invalid("That page link is malformed.".into())))
        .transpose()?;
    let found = rooms::list(&st.pipeline, &app, after.as_ref(), PAGE).await?;
    let next = (found.len() as u32 == PAGE)
        .then(|| found.last().map(|d| d.room.id.to_string()))
        .flatten();
    let chrome = Chrome::new(&auth.viewer, format!("Rooms of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "rooms");
    let here = format!(
        "{}/rooms{}",
        chrome.app_url(),
        after
            .as_ref()
            .map(|a| format!("?after={}", percent(a.as_str())))
            .unwrap_or_default()
    );
    Ok(html(RoomsPage {
        chrome,
        rooms: found
            .into_iter()
            .map(|d| RoomRow {
                conversation: percent(&format!("r:{}", d.room.id)),
                id: d.room.id.to_string(),
                name: d.room.name,
                online: d.member_count,
                last_seq: d.room.last_seq,
                origin: d.room.created_by.as_str(),
                created: when(d.room.created_at),
            })
            .collect(),
        here,
        next,
    }))
}
