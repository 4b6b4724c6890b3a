//! `GET /me` and the account's API keys.

use super::PageInfo;
use crate::domain::accounts::Tier;
use crate::domain::api_keys::{ApiKey, IssuedKey, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The calling key and its account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub account_id: String,
    pub account_name: String,
    pub key_id: String,
    pub key_name: String,
    pub scopes: Vec<Scope>,
    pub tier: Tier,
    /// The account's standing in the current one-minute window.
    pub rate_limit: Option<RateLimit>,
}

/// Requests per one-minute window (`null` limit and remaining: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Epoch seconds when the window ends.
    pub reset: i64,
    pub window_seconds: i64,
}

/// `POST /api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A label for the key (1 to 100 characters, spaces around it trimmed).
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]{0,98}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
        example = "ci"
    )]
    pub name: String,
    /// At least one of `read`, `write`, `predict`, `admin` (admin implies the others).
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key_id: String,
    /// The secret to send as `Authorization: Bearer <api_key>`; store it now, it is never
    /// shown again.
    pub api_key: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
}

impl From<&IssuedKey> for CreatedKey {
    fn from(issued: &IssuedKey) -> Self {
        CreatedKey {
            key_id: issued.key.key_id.clone(),
            api_key: issued.secret.clone(),
            name: issued.key.name.clone(),
            scopes: issued.key.scopes.clone(),
            created_at: issued.key.created_at.clone(),
        }
    }
}

/// A key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub revoked: bool,
    pub revoked_at: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> Self {
        ApiKeyView {
            key_id: key.key_id.clone(),
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            created_at: key.created_at.clone(),
            revoked: key.revoked,
            revoked_at: key.revoked_at.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
    pub pagination: PageInfo,
}
