//! Tern's operations console: server-rendered pages at `/console` for platform operators
//! (every tenant) and tenant members (their own tenant, by role). A door like the server
//! API: it parses what the browser sent, calls one `tern_platform::service::console` (or
//! other `service`) operation, renders HTML with askama (escaped, checked at compile time).
//!
//! Layout:
//! - `state`: `ConsoleState`, one cheap clone of what handlers need.
//! - `auth`: the session cookie, the `Auth` and `Posted` extractors (who is asking; the CSRF
//!   token of every POST), the sign-in rate limit.
//! - `security`: headers on every answer (strict CSP without inline scripts, no framing).
//! - `error`: `PageError`, the one error type, rendered as a page with the right status.
//! - `views`: formatting shared by the pages (times, roles).
//! - `pages`: one module per area (the overview, sign-in, sign-up, tenants, apps, users, messages, the push
//!   log, webhooks, groups and rooms, broadcasts, usage, alerts, word lists, audit, the mail outbox, operators,
//!   API tokens).
//! - `assets`: the vendored htmx, the stylesheet and script, embedded in the binary.
//! - `admin`: the operator API, `/admin/v1` (JSON, in the server API's OpenAPI document).

pub mod admin;
mod assets;
mod auth;
mod error;
mod pages;
mod security;
mod state;
mod views;

pub use auth::LoginLimiter;
pub use state::{ConsoleInner, ConsoleState};

use axum::routing::{get, post};
use axum::Router;

/// Where the console is mounted; every link it renders starts with it.
pub const BASE: &str = "/console";

/// The console's routes, every path under `/console`, and the operator API under
/// `/admin/v1`. Paths under `/console` that no page claims answer an HTML 404 (the other
/// doors keep their JSON 404 elsewhere).
pub fn router(state: ConsoleState) -> Router {
    pages_router(state.clone()).merge(admin::router(state))
}

fn pages_router(state: ConsoleState) -> Router {
    use pages::*;
    let at = |path: &str| format!("{BASE}{path}");
    Router::new()
        .route(BASE, get(tenants::home))
        .route(&at("/"), get(tenants::home))
        .route(&at("/login"), get(sign_in::form).post(sign_in::submit))
        .route(&at("/logout"), post(sign_in::sign_out))
        .route(&at("/logout-everywhere"), post(sign_in::sign_out_everywhere))
        .route(&at("/signup"), get(signup::form).post(signup::submit))
        .route(&at("/verify"), get(signup::show).post(signup::verify))
        .route(&at("/invite"), get(team::show).post(team::accept))
        .route(
            &at("/operator-invite"),
            get(operators::show_link).post(operators::accept),
        )
        .route(&at("/operators"), get(operators::show))
        .route(&at("/operators/invitations"), post(operators::invite))
        .route(
            &at("/operators/invitations/{invitation}/revoke"),
            post(operators::revoke),
        )
        .route(&at("/assets/{file}"), get(assets::serve))
        .route(&at("/mail"), get(mail::outbox))
        .route(&at("/tenants"), get(tenants::list).post(tenants::create))
        .route(&at("/tokens"), get(tokens::list).post(tokens::create))
        .route(&at("/tokens/{token}/revoke"), post(tokens::revoke))
        .route(&at("/audit"), get(audit::platform))
        .route(&at("/overview"), get(overview::platform))
        .route(&at("/t/{tenant}"), get(tenants::show))
        .route(&at("/t/{tenant}/status"), post(tenants::set_status))
        .route(&at("/t/{tenant}/decision"), post(tenants::decide))
        .route(&at("/t/{tenant}/members"), post(tenants::add_member))
        .route(&at("/t/{tenant}/members/{account}/role"), post(team::change_role))
        .route(&at("/t/{tenant}/members/{account}/remove"), post(team::remove))
        .route(&at("/t/{tenant}/invitations"), post(team::invite))
        .route(&at("/t/{tenant}/invitations/{invitation}/revoke"), post(team::revoke))
        .route(&at("/t/{tenant}/audit"), get(audit::tenant))
        .route(&at("/t/{tenant}/apps"), get(apps::to_tenant).post(apps::create))
        .route(&at("/t/{tenant}/apps/{app}"), get(apps::show))
        .route(&at("/t/{tenant}/apps/{app}/settings"), post(apps::save_settings))
        .route(
            &at("/t/{tenant}/apps/{app}/secrets/rotate"),
            get(apps::to_app).post(apps::rotate_secret),
        )
        .route(
            &at("/t/{tenant}/apps/{app}/secrets/{secret}/revoke"),
            post(apps::revoke_secret),
        )
        .route(
            &at("/t/{tenant}/apps/{app}/webhook-secret/rotate"),
            get(apps::to_app).post(apps::rotate_webhook_secret),
        )
        .route(&at("/t/{tenant}/apps/{app}/users"), get(users::list))
        .route(&at("/t/{tenant}/apps/{app}/users/{user}"), get(users::show))
        .route(&at("/t/{tenant}/apps/{app}/users/{user}/{action}"), post(users::act))
        .route(&at("/t/{tenant}/apps/{app}/messages"), get(messages::explore))
        .route(
            &at("/t/{tenant}/apps/{app}/messages/{msg}/recall"),
            post(messages::recall),
        )
        .route(&at("/t/{tenant}/apps/{app}/push"), get(push::show))
        .route(&at("/t/{tenant}/apps/{app}/push/test"), post(push::test))
        .route(
            &at("/t/{tenant}/apps/{app}/broadcasts"),
            get(broadcasts::list).post(broadcasts::start),
        )
        .route(
            &at("/t/{tenant}/apps/{app}/broadcasts/{broadcast}/cancel"),
            post(broadcasts::cancel),
        )
        .route(&at("/t/{tenant}/apps/{app}/overview"), get(overview::app))
        .route(&at("/t/{tenant}/apps/{app}/groups"), get(groups::group))
        .route(&at("/t/{tenant}/apps/{app}/rooms"), get(groups::rooms))
        .route(&at("/t/{tenant}/apps/{app}/usage"), get(usage::show))
        .route(&at("/t/{tenant}/apps/{app}/usage.csv"), get(usage::csv))
        .route(
            &at("/t/{tenant}/apps/{app}/word-lists"),
            get(word_lists::show).post(word_lists::save),
        )
        .route(
            &at("/t/{tenant}/apps/{app}/word-lists/{name}/delete"),
            post(word_lists::delete),
        )
        .route(&at("/t/{tenant}/apps/{app}/alerts"), get(alerts::show))
        .route(&at("/t/{tenant}/apps/{app}/alerts/rules"), post(alerts::create))
        .route(&at("/t/{tenant}/apps/{app}/alerts/rules/{rule}"), post(alerts::update))
        .route(
            &at("/t/{tenant}/apps/{app}/alerts/rules/{rule}/delete"),
            post(alerts::delete),
        )
        .route(
            &at("/t/{tenant}/apps/{app}/webhooks"),
            get(webhooks::show).post(webhooks::save),
        )
        .route(&at("/t/{tenant}/apps/{app}/webhooks/test"), post(webhooks::test))
        .route(
            &at("/t/{tenant}/apps/{app}/webhooks/dead/{event}/redeliver"),
            post(webhooks::redeliver),
        )
        .route(&at("/{*rest}"), axum::routing::any(error::not_found))
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}
