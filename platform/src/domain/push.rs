//! Offline push: the devices users register with their provider tokens, what the delivery
//! log records of each attempt, and the provider-neutral notification a job carries.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{DeviceId, MsgId, UserId};

/// Longest FCM registration token accepted (Google documents no limit; real ones are ~160).
pub const MAX_FCM_TOKEN_LEN: usize = 4096;
/// Longest APNs device token accepted, in hex characters (today's are 64).
pub const MAX_APNS_TOKEN_LEN: usize = 200;
/// Most devices one user may register; the oldest is dropped to make room.
pub const MAX_DEVICES_PER_USER: usize = 20;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PushProvider {
    /// Apple Push Notification service, HTTP/2 with token-based (ES256) authentication.
    Apns,
    /// Firebase Cloud Messaging, HTTP v1 with a service account.
    Fcm,
}

impl PushProvider {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Result<Self, PushInputError> {
        s.parse()
            .map_err(|_| PushInputError(format!("provider must be apns or fcm, not {s:?}")))
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PushEnvironment {
    /// APNs' development gateway (builds signed for development).
    Sandbox,
    #[default]
    Production,
}

impl PushEnvironment {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Result<Self, PushInputError> {
        s.parse()
            .map_err(|_| PushInputError(format!("environment must be sandbox or production, not {s:?}")))
    }
}

/// Input about push that does not parse; the message says which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PushInputError(pub String);

/// A provider token, checked for its provider's shape (APNs: hex, stored lowercase; FCM:
/// the characters Google's tokens use).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PushToken(String);

impl PushToken {
    pub fn parse(provider: PushProvider, s: &str) -> Result<Self, PushInputError> {
        match provider {
            PushProvider::Apns => {
                if s.len() < 64 || s.len() > MAX_APNS_TOKEN_LEN || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(PushInputError(format!(
                        "an APNs device token is 64 to {MAX_APNS_TOKEN_LEN} hexadecimal characters"
                    )));
                }
                Ok(Self(s.to_ascii_lowercase()))
            }
            PushProvider::Fcm => {
                if s.is_empty()
                    || s.len() > MAX_FCM_TOKEN_LEN
                    || !s
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b':'))
                {
                    return Err(PushInputError(format!(
                        "an FCM registration token is 1 to {MAX_FCM_TOKEN_LEN} characters of A-Z a-z 0-9 _ - :"
                    )));
                }
                Ok(Self(s.to_owned()))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token as stored, for a row read back (checked when it was written).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
}

/// An APNs topic (the app's bundle id): 1–255 characters of `A-Z a-z 0-9 . -`.
pub fn parse_topic(s: &str) -> Result<String, PushInputError> {
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')) {
        return Err(PushInputError(
            "a bundle id is 1 to 255 characters of A-Z a-z 0-9 . -".into(),
        ));
    }
    Ok(s.to_owned())
}

/// A BCP 47 locale tag as devices report it (`en-US`, `zh_Hans_CN`): 2–35 characters of
/// `A-Z a-z 0-9 - _`.
pub fn parse_locale(s: &str) -> Result<String, PushInputError> {
    if s.len() < 2 || s.len() > 35 || !s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_')) {
        return Err(PushInputError(
            "a locale is 2 to 35 characters of A-Z a-z 0-9 - _".into(),
        ));
    }
    Ok(s.to_owned())
}

/// A device registration, parsed: what the SDK or the server API gives.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPushDevice {
    pub user_id: UserId,
    pub provider: PushProvider,
    pub token: PushToken,
    /// APNs: the bundle id, or empty for the one in the app's APNs credentials. FCM: empty.
    pub topic: String,
    pub environment: PushEnvironment,
    pub locale: Option<String>,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushDevice {
    pub id: DeviceId,
    pub user_id: UserId,
    pub provider: PushProvider,
    pub token: PushToken,
    pub topic: String,
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A change to a device; `None` keeps the field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushDevicePatch {
    pub token: Option<PushToken>,
    pub environment: Option<PushEnvironment>,
    /// `Some(None)` clears the locale.
    pub locale: Option<Option<String>>,
}

/// An app's credentials for one provider as the store keeps them.
#[derive(Clone, PartialEq)]
pub struct PushCredentialRecord {
    pub provider: PushProvider,
    /// The secret part (the .p8 key, the service-account JSON), sealed by `SecretBox` with
    /// the app id as associated data.
    pub ciphertext: Vec<u8>,
    /// What may be shown: key id, team id and bundle id; project id and client email.
    pub summary: serde_json::Value,
    pub updated_at: UnixMillis,
}

impl std::fmt::Debug for PushCredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCredentialRecord")
            .field("provider", &self.provider)
            .field("summary", &self.summary)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// What became of one push attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PushOutcome {
    /// The provider accepted the notification.
    Sent,
    /// The provider or the network failed in a way worth retrying (429, 5xx, timeout).
    Retrying,
    /// The provider refused it for good (400 reasons, bad credentials), or retries ran out.
    Failed,
    /// The provider said the token is no longer valid; the device was removed.
    TokenRemoved,
}

impl PushOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// One line of the delivery log: one attempt to push to one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushLogEntry {
    /// `pl_` + ULID: the log pages by it, newest first.
    pub id: String,
    pub at: UnixMillis,
    pub user_id: UserId,
    pub device_id: DeviceId,
    /// `None` for a test push.
    pub msg_id: Option<MsgId>,
    pub provider: PushProvider,
    pub outcome: PushOutcome,
    /// The provider's HTTP status; 0 when it was not reached.
    pub http_status: u16,
    /// The provider's reason (`BadDeviceToken`, `UNREGISTERED`, ...) or the local error.
    pub reason: Option<String>,
    /// The provider's id for the notification (`apns-id`, the FCM message name).
    pub provider_id: Option<String>,
    pub latency_ms: i64,
    pub attempt: i32,
}

impl PushLogEntry {
    pub fn new_id() -> String {
        format!("pl_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
    }
}

/// Which log lines to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushLogFilter {
    pub user_id: Option<UserId>,
    pub device_id: Option<DeviceId>,
    pub msg_id: Option<MsgId>,
    /// Lines older than this id (the previous page's last).
    pub before: Option<String>,
}

/// The notification to show, the same for every provider; each provider's adapter writes
/// it in its own payload format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushNotification {
    pub title: String,
    pub body: String,
    /// The user's unread count when the job was made, if the app shows badges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<i64>,
    /// Notifications with the same id replace each other (one per conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_id: Option<String>,
    /// Data for the app: conversation id, message id, seq.
    #[serde(default)]
    pub data: std::collections::BTreeMap<String, String>,
}

/// A job of the push queue: one message to one device, with what to show.
#[derive(Debug, Clone, PartialEq)]
pub struct PushJob {
    pub app_id: crate::ids::AppId,
    pub msg_id: MsgId,
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub notification: PushNotification,
    pub attempts: i32,
    pub created_at: UnixMillis,
}

/// What a finished attempt does to its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobNext {
    /// Sent, or failed for good: the job is done.
    Done,
    /// Tried again at this time.
    RetryAt(UnixMillis),
}

impl NewPushDevice {
    /// A registration as a door receives it: the provider by name, the token checked for
    /// that provider's shape, the bundle id (APNs only; absent: the credentials' one), the
    /// environment (default production) and an optional locale.
    pub fn parse(
        user_id: UserId,
        provider: &str,
        token: &str,
        bundle_id: Option<&str>,
        environment: Option<&str>,
        locale: Option<&str>,
    ) -> Result<Self, PushInputError> {
        let provider = PushProvider::parse(provider)?;
        let token = PushToken::parse(provider, token)?;
        let topic = match (provider, bundle_id.filter(|b| !b.is_empty())) {
            (PushProvider::Apns, Some(b)) => parse_topic(b)?,
            (PushProvider::Fcm, Some(_)) => {
                return Err(PushInputError(
                    "bundle_id is for apns devices; an fcm device's project is in the app's FCM credentials".into(),
                ))
            }
            (_, None) => String::new(),
        };
        let environment = match environment.filter(|e| !e.is_empty()) {
            Some(e) => PushEnvironment::parse(e)?,
            None => PushEnvironment::Production,
        };
        let locale = locale.filter(|l| !l.is_empty()).map(parse_locale).transpose()?;
        Ok(Self {
            user_id,
            provider,
            token,
            topic,
            environment,
            locale,
        })
    }
}

impl PushDevicePatch {
    /// A change as a door receives it; the token is checked against the device's provider
    /// by the operation. An empty locale clears it.
    pub fn parse(token: Option<&str>, environment: Option<&str>, locale: Option<&str>) -> Result<Self, PushInputError> {
        Ok(Self {
            // Both providers' shapes are checked again by `push::update_device`; here only
            // that it could be one of them.
            token: token
                .map(|t| PushToken::parse(PushProvider::Fcm, t).or_else(|_| PushToken::parse(PushProvider::Apns, t)))
                .transpose()?,
            environment: environment.map(PushEnvironment::parse).transpose()?,
            locale: locale
                .map(|l| {
                    if l.is_empty() {
                        Ok(None)
                    } else {
                        parse_locale(l).map(Some)
                    }
                })
                .transpose()?,
        })
    }
}

/// Most conversations one request may mute or unmute.
pub const MAX_MUTES_PER_CHANGE: usize = 100;
/// Most conversations a user may have muted.
pub const MAX_MUTES_PER_USER: usize = 10_000;

/// A user's do-not-disturb hours: no pushes from `start` (inclusive) to `end` (exclusive),
/// minutes after midnight in the user's local time, `utc_offset_minutes` east of UTC. A
/// window with `end` before `start` runs over midnight. The user's live sessions still get
/// every message; only offline pushes stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoNotDisturb {
    pub start_minute: u16,
    pub end_minute: u16,
    pub utc_offset_minutes: i16,
}

/// The most a UTC offset can be (UTC+14:00 and UTC−12:00 exist; this allows a margin).
pub const MAX_UTC_OFFSET_MINUTES: i16 = 14 * 60;

impl DoNotDisturb {
    /// Hours as a door receives them: `"22:00"`, `"07:30"` and the offset from UTC.
    pub fn parse(start: &str, end: &str, utc_offset_minutes: i32) -> Result<Self, PushInputError> {
        fn minute(name: &str, s: &str) -> Result<u16, PushInputError> {
            let bad = || PushInputError(format!("dnd.{name} must be a time of day like \"22:00\", not {s:?}"));
            let (h, m) = s.split_once(':').ok_or_else(bad)?;
            let two_digits = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
            if !two_digits(h) || !two_digits(m) {
                return Err(bad());
            }
            let h: u16 = h.parse().map_err(|_| bad())?;
            let m: u16 = m.parse().map_err(|_| bad())?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            Ok(h * 60 + m)
        }
        let start_minute = minute("start", start)?;
        let end_minute = minute("end", end)?;
        if start_minute == end_minute {
            return Err(PushInputError(
                "dnd.start and dnd.end must differ (mute conversations to silence them all day)".into(),
            ));
        }
        let utc_offset_minutes = i16::try_from(utc_offset_minutes)
            .ok()
            .filter(|o| o.abs() <= MAX_UTC_OFFSET_MINUTES)
            .ok_or_else(|| {
                PushInputError(format!(
                    "dnd.utc_offset_minutes must be from -{MAX_UTC_OFFSET_MINUTES} to {MAX_UTC_OFFSET_MINUTES}"
                ))
            })?;
        Ok(Self {
            start_minute,
            end_minute,
            utc_offset_minutes,
        })
    }

    /// `"HH:MM"` of a minute of the day.
    pub fn clock(minute: u16) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }

    /// Whether `now` falls in the window, in the user's local time.
    pub fn contains(&self, now: UnixMillis) -> bool {
        let local = now.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        let minute = local.rem_euclid(24 * 60);
        let (start, end) = (i64::from(self.start_minute), i64::from(self.end_minute));
        if start < end {
            (start..end).contains(&minute)
        } else {
            minute >= start || minute < end
        }
    }
}

/// What a user chose about their offline pushes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPushSettings {
    pub dnd: Option<DoNotDisturb>,
    /// Conversations whose messages are not pushed to this user, sorted.
    pub muted: Vec<crate::ids::ConversationId>,
}

/// A change of a user's push settings: each part absent keeps what was set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPushSettingsPatch {
    /// `Some(None)` clears the do-not-disturb hours.
    pub dnd: Option<Option<DoNotDisturb>>,
    pub mute: Vec<crate::ids::ConversationId>,
    pub unmute: Vec<crate::ids::ConversationId>,
}

/// What the push worker needs to know of one offline recipient of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct PushAudience {
    pub user_id: UserId,
    /// The user muted the message's conversation.
    pub muted: bool,
    pub dnd: Option<DoNotDisturb>,
    /// The user's unread messages over all their conversations (the badge).
    pub unread: i64,
}

#[cfg(test)]
mod dnd_tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;

    fn at(h: i64, m: i64) -> UnixMillis {
        // Some day at h:m UTC.
        20_000 * DAY + (h * 60 + m) * 60_000
    }

    #[test]
    fn windows_within_a_day_and_over_midnight() {
        let day = DoNotDisturb::parse("09:00", "17:30", 0).unwrap();
        assert!(day.contains(at(9, 0)) && day.contains(at(17, 29)));
        assert!(!day.contains(at(17, 30)) && !day.contains(at(8, 59)));
        let night = DoNotDisturb::parse("22:00", "07:00", 0).unwrap();
        assert!(night.contains(at(23, 0)) && night.contains(at(0, 0)) && night.contains(at(6, 59)));
        assert!(!night.contains(at(7, 0)) && !night.contains(at(12, 0)));
        // 22:00–07:00 in UTC+2 is 20:00–05:00 UTC.
        let east = DoNotDisturb::parse("22:00", "07:00", 120).unwrap();
        assert!(east.contains(at(20, 30)) && !east.contains(at(5, 30)));
        let west = DoNotDisturb::parse("22:00", "07:00", -300).unwrap();
        assert!(west.contains(at(3, 0)) && !west.contains(at(1, 0)));
    }

    #[test]
    fn bad_hours_are_refused() {
        for (s, e, o) in [
            ("24:00", "07:00", 0),
            ("7:00", "08:00", 0),
            ("07:60", "08:00", 0),
            ("ab:cd", "08:00", 0),
            ("+7:00", "08:00", 0),
            ("07:00", "08:0 ", 0),
            ("08:00", "08:00", 0),
            ("08:00", "09:00", 15 * 60),
            ("08:00", "09:00", i32::MAX),
        ] {
            assert!(DoNotDisturb::parse(s, e, o).is_err(), "{s} {e} {o}");
        }
        assert_eq!(DoNotDisturb::clock(22 * 60 + 5), "22:05");
    }
}
