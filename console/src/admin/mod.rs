//! The operator API, `/admin/v1`: JSON over the same platform operations as the console's
//! pages, for operators and tenant members to script what they do in the console. The same
//! roles and the same 404 for anything of another tenant; every change is written to the
//! console's audit log, naming the token that made it.
//!
//! - `caller`: who is calling (an API token, or the console's session cookie with its CSRF token).
//! - `error`: `AdminError` in the server API's error shape, and the JSON body extractor.
//! - `views`: the JSON answers and their OpenAPI schemas.
//! - `tenants`, `users`, `records`, `alerts`, `webhooks`, `push`, `groups`, `broadcasts`,
//!   `team`, `mail`, `overview`, `word_lists`, `operators`: the handlers, by area (one per console page or pair of pages).
//!
//! `AdminDoc` is the OpenAPI part; the binary merges it into the served document (`tern-tenant-api`'s
//! `openapi::document_json_with`), so neither door imports the other.

mod alerts;
mod broadcasts;
mod caller;
mod error;
mod groups;
mod mail;
mod operators;
mod overview;
mod push;
mod records;
mod team;
mod tenants;
mod users;
mod views;
mod webhooks;
mod word_lists;

pub use error::ERROR_CODES;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get, patch, post};
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::ConsoleState;

/// Where the operator API is mounted.
pub const BASE: &str = "/admin/v1";

/// The operator API's routes, every path under `/admin/v1`; other paths under it answer a
/// JSON `not_found`.
pub fn router(state: ConsoleState) -> Router {
    let at = |path: &str| format!("{BASE}{path}");
    let app = |path: &str| format!("{BASE}/tenants/{{tenant}}/apps/{{app}}{path}");
    Router::new()
        .route(&at("/tenants"), get(tenants::list).post(tenants::create))
        .route(&at("/tenants/{tenant}"), get(tenants::get))
        .route(&at("/tenants/{tenant}/approve"), post(tenants::approve))
        .route(&at("/tenants/{tenant}/decline"), post(tenants::decline))
        .route(&at("/tenants/{tenant}/suspend"), post(tenants::suspend))
        .route(&at("/tenants/{tenant}/activate"), post(tenants::activate))
        .route(&at("/tenants/{tenant}/audit"), get(records::tenant_audit))
        .route(
            &at("/tenants/{tenant}/apps"),
            get(tenants::apps).post(tenants::create_app),
        )
        .route(&app(""), get(tenants::app))
        .route(&app("/settings"), patch(tenants::update_settings))
        .route(&app("/secrets/rotate"), post(tenants::rotate_secret))
        .route(&app("/secrets/{secret}/revoke"), post(tenants::revoke_secret))
        .route(&app("/webhook-secret/rotate"), post(tenants::rotate_webhook_secret))
        .route(&app("/users"), get(users::search))
        .route(&app("/users/{user}"), get(users::get))
        .route(&app("/users/{user}/{action}"), post(users::moderate))
        .route(&app("/conversations/{conversation}/messages"), get(users::history))
        .route(&app("/messages/{msg}/recall"), post(users::recall))
        .route(&app("/usage"), get(records::usage))
        .route(&app("/alert-rules"), get(alerts::rules).post(alerts::create_rule))
        .route(
            &app("/alert-rules/{rule}"),
            get(alerts::rule).patch(alerts::update_rule).delete(alerts::delete_rule),
        )
        .route(&app("/alerts"), get(alerts::alerts))
        .route(&app("/word-lists"), get(word_lists::list))
        .route(
            &app("/word-lists/{name}"),
            get(word_lists::get).put(word_lists::put).delete(word_lists::delete),
        )
        .route(&at("/audit"), get(records::platform_audit))
        .route(&at("/tokens"), get(records::tokens).post(records::create_token))
        .route(&at("/tokens/{token}/revoke"), post(records::revoke_token))
        .route(&at("/mail"), get(mail::outbox))
        .route(
            &at("/operator-invitations"),
            get(operators::list).post(operators::invite),
        )
        .route(
            &at("/operator-invitations/{invitation}/revoke"),
            post(operators::revoke),
        )
        .route(&at("/overview"), get(overview::platform))
        .route(&app("/overview"), get(overview::app))
        .route(&at("/tenants/{tenant}/members"), get(team::members))
        .route(&at("/tenants/{tenant}/members/{account}/role"), post(team::change_role))
        .route(&at("/tenants/{tenant}/members/{account}/remove"), post(team::remove))
        .route(
            &at("/tenants/{tenant}/invitations"),
            get(team::invitations).post(team::invite),
        )
        .route(
            &at("/tenants/{tenant}/invitations/{invitation}/revoke"),
            post(team::revoke),
        )
        .route(&app("/webhook"), get(webhooks::get).put(webhooks::set))
        .route(&app("/webhook/attempts"), get(webhooks::attempts))
        .route(&app("/webhook/dead-events"), get(webhooks::dead))
        .route(
            &app("/webhook/dead-events/{event}/redeliver"),
            post(webhooks::redeliver),
        )
        .route(&app("/webhook/test"), post(webhooks::test))
        .route(&app("/push/log"), get(push::log))
        .route(&app("/push/test"), post(push::test))
        .route(&app("/users/{user}/devices"), get(push::devices))
        .route(&app("/groups"), get(groups::list_groups))
        .route(&app("/groups/{group}"), get(groups::group))
        .route(&app("/groups/{group}/members"), get(groups::members))
        .route(&app("/rooms"), get(groups::list_rooms))
        .route(&app("/broadcasts"), get(broadcasts::list).post(broadcasts::start))
        .route(&app("/broadcasts/{broadcast}/cancel"), post(broadcasts::cancel))
        .route(&at("/{*rest}"), any(error::not_found))
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(axum::middleware::from_fn(no_store))
        .with_state(state)
}

/// Answers may carry a secret shown once: no cache keeps them.
async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(OpenApi)]
#[openapi(
    paths(
        tenants::list, tenants::create, tenants::get, tenants::approve, tenants::decline,
        tenants::suspend, tenants::activate, tenants::apps, tenants::create_app, tenants::app,
        tenants::update_settings, tenants::rotate_secret, tenants::revoke_secret,
        tenants::rotate_webhook_secret,
        users::search, users::get, users::moderate, users::history, users::recall,
        records::usage, alerts::rules, alerts::create_rule, alerts::rule, alerts::update_rule,
        alerts::delete_rule, alerts::alerts, records::platform_audit, records::tenant_audit,
        records::tokens, records::create_token, records::revoke_token,
        webhooks::get, webhooks::set, webhooks::attempts, webhooks::dead, webhooks::redeliver,
        webhooks::test,
        push::log, push::devices, push::test,
        groups::list_groups, groups::group, groups::members, groups::list_rooms,
        broadcasts::list, broadcasts::start, broadcasts::cancel,
        team::members, team::change_role, team::remove, team::invitations, team::invite,
        team::revoke,
        mail::outbox, overview::platform, overview::app,
        word_lists::list, word_lists::get, word_lists::put, word_lists::delete,
        operators::list, operators::invite, operators::revoke,
    ),
    components(schemas(views::ErrorEnvelope, views::ErrorDetail)),
    modifiers(&OperatorAuth),
)]
pub struct AdminDoc;

struct OperatorAuth;

impl Modify for OperatorAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An operator API token (tern_at_…), made in the console under API tokens (docs/console.md).",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "console_session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::auth::SESSION_COOKIE,
                    "The console's session cookie; a change also needs the session's X-CSRF-Token header.",
                ),
            )),
        );
        let security = vec![
            SecurityRequirement::new("operator_token", Vec::<String>::new()),
            SecurityRequirement::new("console_session", Vec::<String>::new()),
        ];
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.security = Some(security.clone());
            }
        }
        let mut text = String::from(
            "The operator API (docs/console.md, \"The operator API\"): what the console does, as JSON, \
             with an operator API token or the console's session cookie. Errors are \
             `{\"error\":{\"code\",\"message\",\"request_id\"}}` with these codes:\n\n\
             | code | status | meaning |\n|---|---|---|\n",
        );
        for (code, status, meaning) in ERROR_CODES {
            text.push_str(&format!("| `{code}` | {status} | {meaning} |\n"));
        }
        doc.tags = Some(vec![utoipa::openapi::tag::TagBuilder::new()
            .name("operator API")
            .description(Some(text))
            .build()]);
    }
}
