//! Tenants: the customers that own apps, their status and the rule for their names.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
    /// Signed up through the console and waiting for an operator.
    PendingApproval,
    /// Signed up, and an operator declined it: its apps never work, its name stays taken.
    Declined,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    /// Unique across the platform; 1–100 characters.
    pub name: String,
    pub status: TenantStatus,
    pub created_at: UnixMillis,
}

/// Tenant names: 1–100 characters, no control characters, not only spaces.
pub fn validate_tenant_name(name: &str) -> Result<(), &'static str> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("tenant name must not be empty");
    }
    if name.chars().count() > 100 {
        return Err("tenant name must be at most 100 characters");
    }
    if super::has_forbidden_chars(name) {
        return Err("tenant name must not contain control or bidirectional formatting characters");
    }
    Ok(())
}
