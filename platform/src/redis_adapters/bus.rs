//! The bus on Redis pub/sub: one channel per node (`P:bus:<node>`), so a delivery is
//! published only to the nodes that hold its recipients, never to every node. Events are
//! JSON. The subscription rides a RESP3 connection that reconnects and resubscribes by
//! itself; an event published while a node was cut off is lost to live delivery and healed
//! by the client's sync, as everything on the bus is already committed.
//!
//! Invalidations (a cache entry made stale by a change) go to one channel every node
//! listens on (`P:inval`); a node that misses one keeps the stale entry until its cache's own
//! expiry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ::redis::aio::ConnectionManager;
use ::redis::{Client, PushInfo, PushKind, Value};
use async_trait::async_trait;
use tokio::sync::mpsc;

use serde::de::DeserializeOwned;

use super::{manager_config, Keys};
use crate::bus::{Bus, BusError, BusEvent, Invalidation};

/// Events buffered for the gateway before new ones are dropped (and counted): the push
/// callback must never block the connection that reads from Redis.
const NODE_QUEUE: usize = 65_536;
/// Invalidations buffered before new ones are dropped (the cache expiry then heals it).
const INVALIDATION_QUEUE: usize = 4_096;

pub struct RedisBus {
    client: Client,
    conn: ConnectionManager,
    keys: Keys,
    /// The subscribed connection of each node this process serves, kept alive here.
    subscriptions: Mutex<HashMap<String, ConnectionManager>>,
}

impl RedisBus {
    pub(crate) fn new(client: Client, conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            client,
            conn,
            keys,
            subscriptions: Mutex::new(HashMap::new()),
        }
    }
}

/// Turns one push from Redis into an event for its listener; anything else is ignored.
fn forward<T: DeserializeOwned>(info: PushInfo, tx: &mpsc::Sender<T>, cut: &AtomicBool) {
    match info.kind {
        PushKind::Message => {
            let Some(Value::BulkString(payload)) = info.data.get(1) else {
                return;
            };
            let event: T = match serde_json::from_slice(payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "dropped a bus event that is not valid JSON");
                    return;
                }
            };
            if tx.try_send(event).is_err() {
                metrics::counter!("tern_bus_dropped_total").increment(1);
            }
            if cut.swap(false, Ordering::Relaxed) {
                tracing::info!("bus subscription receiving again");
            }
        }
        PushKind::Disconnection if !cut.swap(true, Ordering::Relaxed) => {
            tracing::warn!("bus subscription lost its Redis connection; reconnecting");
        }
        _ => {}
    }
}

/// Pings the subscribed connection every second for as long as the gateway listens. The
/// connection manager reconnects only when a command fails, and gives up after its last
/// retry; a subscription sends no commands of its own, so without this ping an outage
/// longer than the retries would leave the node deaf until a restart.
async fn keep_alive<T: Send + 'static>(mut conn: ConnectionManager, listening: mpsc::Sender<T>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !listening.is_closed() {
        tick.tick().await;
        let _ = ::redis::cmd("PING").query_async::<()>(&mut conn).await;
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, node: &str, event: BusEvent) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&event).map_err(|e| BusError::Unavailable(e.to_string()))?;
        let mut c = self.conn.clone();
        ::redis::cmd("PUBLISH")
            .arg(self.keys.channel(node))
            .arg(payload)
            .query_async::<i64>(&mut c)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let (rx, conn) = self.listen(self.keys.channel(node), NODE_QUEUE).await?;
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_owned(), conn);
        Ok(rx)
    }

    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&invalidation).map_err(|e| BusError::Unavailable(e.to_string()))?;
        let mut c = self.conn.clone();
        ::redis::cmd("PUBLISH")
            .arg(self.keys.invalidations())
            .arg(payload)
            .query_async::<i64>(&mut c)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn invalidations(&self) -> Result<mpsc::Receiver<Invalidation>, BusError> {
        let (rx, conn) = self.listen(self.keys.invalidations(), INVALIDATION_QUEUE).await?;
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(String::new(), conn);
        Ok(rx)
    }
}

impl RedisBus {
    /// A subscription to `channel` on a connection of its own that resubscribes after a
    /// reconnect and is pinged so it notices an outage; JSON messages come out of the
    /// receiver. The connection is returned for the caller to keep alive.
    async fn listen<T: DeserializeOwned + Send + 'static>(
        &self,
        channel: String,
        queue: usize,
    ) -> Result<(mpsc::Receiver<T>, ConnectionManager), BusError> {
        let (tx, rx) = mpsc::channel(queue);
        let watched = tx.clone();
        let cut = Arc::new(AtomicBool::new(false));
        let config = manager_config()
            .set_automatic_resubscription()
            .set_push_sender(move |info: PushInfo| {
                forward(info, &tx, &cut);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut conn = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        conn.subscribe(channel)
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        tokio::spawn(keep_alive(conn.clone(), watched));
        Ok((rx, conn))
    }
}
