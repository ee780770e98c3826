//! `store-grow`: fills a data dir with many stored direct messages, then the `chat`
//! scenario runs against it, to show whether a send gets slower as the database grows.
//!
//! Going through the API would take hours for 10,000,000 messages, so the fill writes the
//! rows the send path writes (`messages`, `conversations`, `user_conversations`, the app's
//! version row, `users`) with plain SQL, many thousand to a transaction. The shapes follow
//! the server's: ULID message ids in time order, the SDK's random client message ids,
//! direct conversations `d:<a>:<b>` between the users `u0…` the chat connects, seqs
//! counting up within a conversation. It is written here rather than through the
//! platform crate so the benchmark stays a client of the service, bound only to its schema.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

/// Messages written per transaction.
const PER_TRANSACTION: usize = 20_000;
/// Rows per INSERT statement.
const PER_STATEMENT: usize = 500;

pub struct FillOptions {
    /// Messages the app should hold when the fill is done.
    pub messages: u64,
    /// Users the messages are spread over (`u0`…).
    pub users: usize,
    /// Direct conversations per user on average.
    pub conversations_per_user: usize,
}

/// The database a fill writes to: the SQLite file of the data dir, or a PostgreSQL URL.
enum Db {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Db {
    async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Db> {
        match database_url {
            Some(url) if url.starts_with("postgres") => {
                Ok(Db::Pg(PgPoolOptions::new().max_connections(1).connect(url).await?))
            }
            Some(url) => bail!("store-grow fills SQLite (the data dir's) or PostgreSQL, not {url}"),
            None => {
                let options = SqliteConnectOptions::new()
                    .filename(data_dir.join("tern.db"))
                    .journal_mode(SqliteJournalMode::Wal)
                    // A fill that dies is run again; the server reopens with its own settings.
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("cache_size", "-262144");
                Ok(Db::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await?,
                ))
            }
        }
    }

    /// Runs `statements` in one transaction.
    async fn transaction(&self, statements: &[String]) -> Result<()> {
        match self {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                for s in statements {
                    sqlx::raw_sql(s).execute(&mut *tx).await.with_context(|| trim(s))?;
                }
                tx.commit().await?;
            }
            Db::Pg(p) => {
                let mut tx = p.begin().await?;
                for s in statements {
                    sqlx::raw_sql(s).execute(&mut *tx).await.with_context(|| trim(s))?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn scalar_i64(&self, sql: &str) -> Result<i64> {
        Ok(match self {
            Db::Sqlite(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?,
            Db::Pg(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?,
        })
    }

    async fn scalar_text(&self, sql: &str) -> Result<String> {
        Ok(match self {
            Db::Sqlite(p) => sqlx::query_scalar::<_, String>(sql).fetch_one(p).await?,
            Db::Pg(p) => sqlx::query_scalar::<_, String>(sql).fetch_one(p).await?,
        })
    }

    /// Every conversation's last seq in the app.
    async fn seqs(&self, app: &str) -> Result<HashMap<String, i64>> {
        let sql = format!("SELECT id, last_seq FROM conversations WHERE app_id = '{app}'");
        let mut out = HashMap::new();
        match self {
            Db::Sqlite(p) => {
                for r in sqlx::query(&sql).fetch_all(p).await? {
                    out.insert(r.try_get(0)?, r.try_get(1)?);
                }
            }
            Db::Pg(p) => {
                for r in sqlx::query(&sql).fetch_all(p).await? {
                    out.insert(r.try_get(0)?, r.try_get(1)?);
                }
            }
        }
        Ok(out)
    }

    /// Makes the planner's statistics match the grown tables (the server's own
    /// maintenance would, over time; a fresh fill should not leave them stale).
    async fn analyze(&self) -> Result<()> {
        let sql = match self {
            Db::Sqlite(_) => "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)",
            Db::Pg(_) => "ANALYZE",
        };
        match self {
            Db::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ())?,
            Db::Pg(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ())?,
        }
        Ok(())
    }
}

fn trim(s: &str) -> String {
    s.chars().take(200).collect()
}

/// A ULID's 26 Crockford base32 characters, lower case, as `MsgId::generate` makes them.
fn ulid_lower(ms: u64, random: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let value: u128 = ((ms as u128) << 80) | (random & ((1u128 << 80) - 1));
    (0..26)
        .map(|i| ALPHABET[((value >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The two users of conversation `c`, in the order the id wants them (the user ids `u<n>`
/// sorted as strings, so `u1971` before `u910`: sorting the numbers wrote ids the server
/// refuses), `users` > 1.
fn pair(c: usize, users: usize) -> (usize, usize) {
    let a = c % users;
    // A fixed spread over the other users (no conversation with oneself).
    let step = 1 + (c / users).wrapping_mul(7919).wrapping_add(c.wrapping_mul(104_729)) % (users - 1);
    let b = (a + step) % users;
    if a.to_string() <= b.to_string() {
        (a, b)
    } else {
        (b, a)
    }
}

/// The app's id for `app_key`, and how many messages it holds.
pub async fn fill(data_dir: &Path, database_url: Option<&str>, app_key: &str, o: &FillOptions) -> Result<()> {
    if o.users < 2 {
        bail!("--fill-users must be at least 2");
    }
    let db = Db::open(data_dir, database_url).await?;
    let app = db
        .scalar_text(&format!("SELECT id FROM apps WHERE app_key = '{app_key}'"))
        .await
        .context("the bench app in the database")?;
    let mut stored = db
        .scalar_i64(&format!("SELECT COUNT(*) FROM messages WHERE app_id = '{app}'"))
        .await? as u64;
    if stored >= o.messages {
        println!(
            "store-grow fill: {stored} messages stored already (wanted {})",
            o.messages
        );
        return Ok(());
    }
    let t0 = Instant::now();
    let start_count = stored;
    // Users first: the chat's and the fill's users exist as the API would have made them.
    let now = now_ms();
    for chunk in (0..o.users).collect::<Vec<_>>().chunks(PER_STATEMENT) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("('{app}', 'u{i}', 'u{i}', '{{}}', {now}, {now})"))
            .collect();
        db.transaction(&[format!(
            "INSERT INTO users (app_id, id, name, metadata, created_at, updated_at) VALUES {} \
             ON CONFLICT (app_id, id) DO NOTHING",
            values.join(", ")
        )])
        .await?;
    }

    let conversations = (o.users * o.conversations_per_user / 2).max(1);
    let mut seqs = db.seqs(&app).await?;
    let mut rng = rand::rngs::StdRng::from_entropy();
    // The stored history spans the 30 days before now, in send order.
    let span_ms = 30 * 86_400_000i64;
    let first_ms = now - span_ms;
    let total = o.messages;
    while stored < total {
        let n = (total - stored).min(PER_TRANSACTION as u64) as usize;
        let version = db
            .scalar_i64(&format!(
                "INSERT INTO app_versions (app_id, version) VALUES ('{app}', 1) \
                 ON CONFLICT (app_id) DO UPDATE SET version = app_versions.version + 1 RETURNING version"
            ))
            .await?;
        let mut rows = Vec::with_capacity(n);
        // conversation id -> (last seq, last msg id, last time, last sender)
        let mut touched: HashMap<String, (i64, String, i64, usize)> = HashMap::new();
        for k in 0..n {
            let at = first_ms + ((stored + k as u64) as f64 / total as f64 * span_ms as f64) as i64;
            let c = rng.gen_range(0..conversations);
            let (a, b) = pair(c, o.users);
            let id = format!("d:u{a}:u{b}");
            let sender = if rng.gen::<bool>() { a } else { b };
            let seq = seqs.entry(id.clone()).or_insert(0);
            *seq += 1;
            let msg_id = format!("m_{}", ulid_lower(at as u64, rng.gen()));
            let client = format!("c-{:016x}{:016x}", rng.gen::<u64>(), rng.gen::<u64>());
            let text = format!("message {} of a grown store", stored + k as u64);
            rows.push(format!(
                "('{app}', '{msg_id}', '{id}', {seq}, 'u{sender}', '{client}', 'text', \
                 '{{\"text\":\"{text}\"}}', {at}, FALSE, NULL, NULL, NULL, FALSE)"
            ));
            touched.insert(id, (*seq, msg_id, at, sender));
        }
        let mut statements: Vec<String> = rows
            .chunks(PER_STATEMENT)
            .map(|chunk| {
                format!(
                    "INSERT INTO messages (app_id, msg_id, conversation_id, seq, sender_key, client_msg_id, \
                     msg_type, content, created_at, recalled, edited_at, reply_to, mentions, mention_all) VALUES {}",
                    chunk.join(", ")
                )
            })
            .collect();
        let touched: Vec<_> = touched.into_iter().collect();
        for chunk in touched.chunks(PER_STATEMENT) {
            let convs: Vec<String> = chunk
                .iter()
                .map(|(id, (seq, msg, at, _))| format!("('{app}', '{id}', {seq}, '{msg}', {version}, {at})"))
                .collect();
            statements.push(format!(
                "INSERT INTO conversations (app_id, id, last_seq, last_msg_id, version, updated_at) VALUES {} \
                 ON CONFLICT (app_id, id) DO UPDATE SET last_seq = excluded.last_seq, \
                 last_msg_id = excluded.last_msg_id, version = excluded.version, updated_at = excluded.updated_at",
                convs.join(", ")
            ));
            let mut entries = Vec::with_capacity(chunk.len() * 2);
            for (id, (seq, _, _, sender)) in chunk {
                let mut users = id.trim_start_matches("d:").split(':');
                for user in [users.next(), users.next()].into_iter().flatten() {
                    // The last sender has read up to their message; the other has not.
                    let read = if user == format!("u{sender}") {
                        *seq
                    } else {
                        (*seq - 1).max(0)
                    };
                    entries.push(format!("('{app}', '{user}', '{id}', {read}, 0, {version})"));
                }
            }
            statements.push(format!(
                "INSERT INTO user_conversations (app_id, user_id, conversation_id, read_seq, joined_seq, version) \
                 VALUES {} ON CONFLICT (app_id, user_id, conversation_id) DO UPDATE SET \
                 read_seq = excluded.read_seq, version = excluded.version",
                entries.join(", ")
            ));
        }
        db.transaction(&statements).await?;
        stored += n as u64;
        let done = stored - start_count;
        if done % 200_000 < n as u64 || stored == total {
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "store-grow fill: {stored}/{total} messages ({:.0}/s)",
                done as f64 / secs.max(1e-9)
            );
        }
    }
    db.analyze().await?;
    println!(
        "store-grow fill done: {stored} messages in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The data dir's saved bench app (key, secret), if a previous run made one.
pub fn saved_app(data_dir: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(app_file(data_dir)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((v["app_key"].as_str()?.to_owned(), v["app_secret"].as_str()?.to_owned()))
}

pub fn save_app(data_dir: &Path, key: &str, secret: &str) -> Result<()> {
    std::fs::write(
        app_file(data_dir),
        serde_json::json!({"app_key": key, "app_secret": secret}).to_string(),
    )?;
    Ok(())
}

fn app_file(data_dir: &Path) -> PathBuf {
    data_dir.join("bench-app.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_sort_by_time_and_have_26_characters() {
        let a = ulid_lower(1_700_000_000_000, u128::MAX);
        let b = ulid_lower(1_700_000_000_001, 0);
        assert_eq!(a.len(), 26);
        assert!(a < b);
    }

    #[test]
    fn pairs_are_two_different_users_in_order() {
        for c in 0..10_000 {
            let (a, b) = pair(c, 37);
            // The server accepts a direct conversation id only with its users sorted as
            // strings (`d:u10:u9`, not `d:u9:u10`).
            assert!(format!("u{a}") < format!("u{b}") && a < 37 && b < 37, "{c}: {a} {b}");
        }
    }
}
