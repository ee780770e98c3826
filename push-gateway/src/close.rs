//! Why a connection is being closed, and the WebSocket close codes the gateway uses.
//! Every close is preceded by a frame that names the reason with a stable code (an `error`
//! frame, or `kicked` when the client should not simply retry the command).

/// Close codes (docs/protocol.md, "Close codes").
pub mod codes {
    /// Normal close (client asked).
    pub const NORMAL: u16 = 1000;
    /// A frame over the size limit (RFC 6455 "message too big").
    pub const TOO_BIG: u16 = 1009;
    /// The server is restarting: reconnect (with backoff).
    pub const SERVICE_RESTART: u16 = 1012;
    /// A malformed frame, an unknown command or the wrong encoding.
    pub const BAD_FRAME: u16 = 4000;
    /// Kicked by the app (kick, token revocation, ban) or replaced by a newer session.
    pub const KICKED: u16 = 4001;
    /// No `auth` first, or none in time.
    pub const NOT_AUTHENTICATED: u16 = 4002;
    /// The token was refused; the error frame's code says why.
    pub const AUTH_FAILED: u16 = 4003;
    /// Nothing heard from the client for twice the heartbeat interval.
    pub const HEARTBEAT_TIMEOUT: u16 = 4004;
    /// The client did not read its frames fast enough.
    pub const SLOW_CONSUMER: u16 = 4005;
}

/// How a session ends: the frame sent just before the close, and the close itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub close_code: u16,
    /// The stable snake_case code in the last frame (and the close reason).
    pub code: String,
    pub reason: String,
    /// Send `kicked` (true) or `error` (false) before closing.
    pub kicked: bool,
}

impl Closing {
    pub fn error(close_code: u16, code: &str, reason: impl Into<String>) -> Self {
        Self {
            close_code,
            code: code.to_owned(),
            reason: reason.into(),
            kicked: false,
        }
    }

    pub fn kicked(close_code: u16, code: &str, reason: impl Into<String>) -> Self {
        Self {
            close_code,
            code: code.to_owned(),
            reason: reason.into(),
            kicked: true,
        }
    }
}
