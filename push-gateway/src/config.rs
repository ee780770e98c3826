//! Tunables of one gateway node. Defaults suit production; tests shorten the timers.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// This node's id on the bus and in presence; unique per process.
    pub node_id: String,
    /// Connections this node accepts at once; the next upgrade gets 503 `too_many_connections`.
    pub max_connections: usize,
    /// How often clients should send something; a connection silent for twice this is closed.
    pub heartbeat_interval: Duration,
    /// Time from upgrade to a valid `auth` frame.
    pub auth_timeout: Duration,
    /// Frames queued for one session before it counts as a slow consumer and is closed.
    pub outbound_queue: usize,
    /// Largest WebSocket frame or message accepted from a client.
    pub max_frame_bytes: usize,
    /// Bytes read from the socket at a time (tungstenite's default of 128 KiB is far too
    /// much for chat traffic across many thousand sockets).
    pub read_buffer_bytes: usize,
    /// Bytes of pushed frames the socket's write buffer gathers before writing them out
    /// (the end of a batch flushes the rest). The buffer keeps its largest size for the
    /// connection's life, so this bounds what a burst leaves behind.
    pub write_buffer_bytes: usize,
    /// How old the app settings that open sessions apply may get: a settings change
    /// reaches every open session of the app within this (plus one store read).
    pub app_refresh: Duration,
    /// Typing indicators one session may send per second; extras are dropped.
    pub typing_per_second: u32,
    /// A busy room with many members on this node (`rooms::PACED_FROM`) has its messages
    /// reach them at most this often, several at a time (one write per member instead of
    /// one per message); a quiet room's next message goes at once. Zero turns this off.
    pub room_flush_interval: Duration,
    /// `scheme://host[:port]` put before the paths of upload and download URLs
    /// (`TERN_PUBLIC_URL`); without it clients get paths to resolve against their host.
    pub public_url: Option<String>,
    /// Agree to `permessage-deflate` when a client offers it (`TERN_WS_DEFLATE`). Off by
    /// default: see docs/compression.md for what it costs per connection.
    pub deflate: bool,
}

impl GatewayConfig {
    /// A write that takes longer than this means the peer stopped reading: the session
    /// gives up on it.
    pub fn write_timeout(&self) -> Duration {
        self.heartbeat_interval.max(Duration::from_secs(10))
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            node_id: format!("gw-{}", std::process::id()),
            max_connections: 100_000,
            heartbeat_interval: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            outbound_queue: 256,
            max_frame_bytes: 64 * 1024,
            read_buffer_bytes: 2 * 1024,
            write_buffer_bytes: 4 * 1024,
            app_refresh: Duration::from_secs(2),
            typing_per_second: 2,
            room_flush_interval: Duration::from_millis(200),
            public_url: None,
            deflate: false,
        }
    }
}
