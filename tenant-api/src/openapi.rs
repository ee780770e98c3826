//! The OpenAPI 3.1 document of the REST server API, generated from the handlers'
//! annotations and served at `GET /v1/openapi.json`. Other doors' parts are merged in by the
//! caller, not imported here: the binary renders the served document with
//! [`document_json_with`], adding the operator API (`/admin/v1`, the console crate's
//! `AdminDoc`), and hands it to the router through `ApiState::openapi_json`. That full
//! document is committed as `docs/openapi.json`; a test of the `tern` package fails when the
//! two differ. [`document_json`] is the server API's part alone (the default a bare
//! `ApiState` serves).

use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ERROR_CODES;
use crate::rest::*;

/// Every error answer: `{"error": {"code", "message", "request_id"}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code; see the list in the API description.
    pub code: String,
    pub message: String,
    pub request_id: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tern server API", version = "1"),
    paths(
        users::upsert, users::list, users::get, users::update, users::delete,
        users::mint_token, users::revoke_tokens, users::kick,
        conversations::list, conversations::get, conversations::mark_read,
        messages::send, messages::batch_send, messages::get, messages::recall, messages::history,
        groups::create, groups::get, groups::update, groups::dismiss,
        groups::add_members, groups::remove_member, groups::members, groups::member,
        groups::set_role, groups::mute, groups::unmute, groups::leave, groups::transfer,
        groups::join, groups::join_requests, groups::accept, groups::decline,
        groups::user_groups, groups::read_counts, groups::readers,
        app::get_settings, app::patch_settings,
        presence::query,
        webhooks::get, webhooks::put, webhooks::dead, webhooks::redeliver,
        moderation::list_word_lists, moderation::get_word_list, moderation::put_word_list,
        moderation::delete_word_list, moderation::ban, moderation::unban, moderation::mute, moderation::unmute,
        friends::send_request, friends::list_requests, friends::accept, friends::decline,
        friends::list, friends::get, friends::update, friends::delete,
        friends::blocks, friends::block, friends::unblock,
        lifecycle::edit, lifecycle::delete_for_user, lifecycle::extensions, lifecycle::update_extensions,
        lifecycle::add_reaction, lifecycle::remove_reaction, lifecycle::reaction_users,
        rooms::create, rooms::list, rooms::get, rooms::update, rooms::dismiss, rooms::remove_member,
        rooms::mutes, rooms::mute, rooms::unmute,
        broadcasts::start, broadcasts::list, broadcasts::get, broadcasts::cancel,
        files::create, files::get, files::storage,
        push::register, push::list, push::update, push::remove,
        push::credentials, push::set_apns, push::set_fcm, push::delete_credentials,
        push::log, push::test_push, push::get_settings, push::update_settings,
    ),
    components(schemas(ErrorEnvelope, ErrorDetail)),
    modifiers(&Signing),
    security(("app_key" = [], "timestamp" = [], "nonce" = [], "signature" = []), ("bearer" = [])),
)]
pub struct ApiDoc;

struct Signing;

impl Modify for Signing {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let header =
            |name: &str, what: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)));
        c.add_security_scheme("app_key", header("X-Tern-App-Key", "The app's AppKey."));
        c.add_security_scheme(
            "timestamp",
            header(
                "X-Tern-Timestamp",
                "Unix time in whole seconds; within 300 s of the server.",
            ),
        );
        c.add_security_scheme(
            "nonce",
            header(
                "X-Tern-Nonce",
                "16-64 characters of [A-Za-z0-9_-], new for every request.",
            ),
        );
        c.add_security_scheme(
            "signature",
            header(
                "X-Tern-Signature",
                "v1= + hex HMAC-SHA256(AppSecret, string to sign); see docs/signing.md.",
            ),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT signed with an AppSecret: iss = AppKey, scope = server, exp - iat <= 3600.",
                    ))
                    .build(),
            ),
        );
        let mut text = String::from(
            "Signed server API of Tern. Every request carries the four X-Tern-* signing headers \
             (docs/signing.md) or a server bearer token. Errors are JSON \
             `{\"error\":{\"code\",\"message\",\"request_id\"}}` with these codes:\n\n| code | status | meaning |\n|---|---|---|\n",
        );
        for (code, status, meaning) in ERROR_CODES {
            text.push_str(&format!("| `{code}` | {status} | {meaning} |\n"));
        }
        doc.info.description = Some(text);
    }
}

/// The server API's document alone: pretty JSON with a trailing newline.
pub fn document_json() -> String {
    document_json_with(Vec::new())
}

/// The server API's document with `extra` parts merged in, in order (paths, schemas and tags
/// of each part are added to the server API's): pretty JSON with a trailing newline, the form
/// served and committed.
pub fn document_json_with(extra: Vec<utoipa::openapi::OpenApi>) -> String {
    let mut doc = ApiDoc::openapi();
    for part in extra {
        doc.merge(part);
    }
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
