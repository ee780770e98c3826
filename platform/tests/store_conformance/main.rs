//! One conformance suite for every `Store` adapter: each test is written once against the
//! trait and run on SQLite always and on PostgreSQL when `TERN_TEST_DATABASE_URL` is set.
//! One module per area of the port; `conformance!` runs each listed test on both backends.
#![allow(clippy::unwrap_used)]

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = tern_platform::store::testing::sqlite_temp().await;
                    assert_eq!(store.backend(), tern_platform::store::Backend::Sqlite);
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(store) = tern_platform::store::testing::postgres_fresh().await {
                        assert_eq!(store.backend(), tern_platform::store::Backend::Postgres);
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

mod alerts;
mod broadcasts;
mod console;
mod files;
mod fixtures;
mod friends;
mod groups;
mod maintenance;
mod messages;
mod operator_api;
mod push;
mod rooms;
mod tenancy;
mod users;
mod webhooks;
