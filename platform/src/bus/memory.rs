//! The in-process bus: one bounded channel per node. Used by `tern serve` on the embedded
//! default, where every role lives in one process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::{mpsc, RwLock};

use super::{Bus, BusError, BusEvent, Invalidation};

/// Events buffered per node before `publish` waits for the gateway to catch up.
const NODE_QUEUE: usize = 65_536;

/// Invalidations buffered per listener before new ones are dropped (the cache expiry then
/// heals it).
const INVALIDATION_QUEUE: usize = 4_096;

#[derive(Default)]
pub struct MemoryBus {
    nodes: RwLock<HashMap<String, mpsc::Sender<BusEvent>>>,
    /// Every engine on this bus that listens for invalidations.
    listeners: Mutex<Vec<mpsc::Sender<Invalidation>>>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, node: &str, event: BusEvent) -> Result<(), BusError> {
        let tx = self.nodes.read().await.get(node).cloned();
        match tx {
            // A node with no subscriber holds no sessions: nothing to deliver.
            None => Ok(()),
            Some(tx) => tx
                .send(event)
                .await
                .map_err(|_| BusError::Unavailable(format!("node {node} stopped listening"))),
        }
    }

    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let (tx, rx) = mpsc::channel(NODE_QUEUE);
        self.nodes.write().await.insert(node.to_owned(), tx);
        Ok(rx)
    }

    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), BusError> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|l| !l.is_closed());
        for l in listeners.iter() {
            let _ = l.try_send(invalidation.clone());
        }
        Ok(())
    }

    async fn invalidations(&self) -> Result<mpsc::Receiver<Invalidation>, BusError> {
        let (tx, rx) = mpsc::channel(INVALIDATION_QUEUE);
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Push, Target};
    use crate::ids::{AppId, UserId};

    #[tokio::test]
    async fn delivers_only_to_the_named_node() {
        let bus = MemoryBus::new();
        let mut a = bus.subscribe("a").await.unwrap();
        let mut b = bus.subscribe("b").await.unwrap();
        let ev = BusEvent {
            app_id: AppId::generate(),
            target: Target::Users {
                users: vec![UserId::parse("u").unwrap()],
            },
            push: Push::Kick {
                code: "kicked".into(),
                reason: "test".into(),
            },
        };
        bus.publish("a", ev.clone()).await.unwrap();
        assert_eq!(a.recv().await, Some(ev));
        assert!(b.try_recv().is_err());
        // Unknown nodes are a no-op, not an error.
        assert!(bus.publish("nobody", a_event()).await.is_ok());
    }

    fn a_event() -> BusEvent {
        BusEvent {
            app_id: AppId::generate(),
            target: Target::Users { users: vec![] },
            push: Push::Kick {
                code: "k".into(),
                reason: "r".into(),
            },
        }
    }
}
