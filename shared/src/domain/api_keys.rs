//! API keys: `key_…` records with scopes, stored only as a SHA-256 hash of the secret.
//!
//! The secret a client holds is `plx_<ulid of the key id>_<64 hex chars>`: the middle part names
//! the record to fetch, so authentication is one `get` followed by a constant-time comparison of
//! hashes, never a scan. Items: `ACCT#<account_id>` / `KEY#<key_id>` (the account's listing) and
//! `APIKEY#<key_id>` / `APIKEY` (the lookup by id), always written together in one transaction.

use super::layout::{
    API_KEY_LISTING_PREFIX, API_KEY_LOOKUP_SK, account_pk, api_key_listing_sk, api_key_lookup_pk,
};
use super::{DomainError, decode, encode};
use crate::ids::{new_id, now_rfc3339};
use crate::ports::{Condition, Item, Store, StoreError, WriteOp};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SECRET_PREFIX: &str = "plx_";
const KEY_ID_PREFIX: &str = "key_";
const ULID_LEN: usize = 26;
const SECRET_HEX_LEN: usize = 64;
/// How many keys one account's listing reads at most (keeps `GET /api-keys` bounded).
const MAX_KEYS_PER_LISTING: usize = 10_000;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Predict,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Predict => "predict",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "predict" => Some(Scope::Predict),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// Parses a list of scope words into a sorted, de-duplicated, non-empty set.
    pub fn parse_list<S: AsRef<str>>(words: &[S]) -> Result<Vec<Scope>, DomainError> {
        let mut scopes = Vec::with_capacity(words.len());
        for w in words {
            let scope = Scope::parse(w.as_ref()).ok_or_else(|| {
                // The word is echoed only when short: a request's whole body is not a message.
                let word: String = w.as_ref().chars().take(32).collect();
                DomainError::validation(
                    format!("unknown scope {word:?}; use read, write, predict or admin"),
                    "scopes",
                )
            })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(DomainError::validation(
                "give at least one scope: read, write, predict or admin",
                "scopes",
            ));
        }
        Ok(scopes)
    }
}

/// Whether `granted` allows an operation needing `needed` (`admin` implies all others).
pub fn allows(granted: &[Scope], needed: Scope) -> bool {
    granted.contains(&Scope::Admin) || granted.contains(&needed)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub key_id: String,
    pub account_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Hex SHA-256 of the whole secret.
    pub key_hash: String,
    pub created_at: String,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A key just created, with the secret the caller sees exactly once.
#[derive(Clone)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn validate_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::validation(
            "key name must be 1 to 100 characters",
            "name",
        ));
    }
    Ok(name.to_string())
}

/// Makes a new key (not yet stored).
pub fn issue(account_id: &str, name: &str, scopes: Vec<Scope>) -> Result<IssuedKey, DomainError> {
    let name = validate_name(name)?;
    if scopes.is_empty() {
        return Err(DomainError::validation("give at least one scope", "scopes"));
    }
    let key_id = new_id("key");
    let id_part = key_id.trim_start_matches(KEY_ID_PREFIX);
    let mut random = [0u8; SECRET_HEX_LEN / 2];
    rand::rng().fill_bytes(&mut random);
    let secret = format!("{SECRET_PREFIX}{id_part}_{}", hex::encode(random));
    let key = ApiKey {
        key_id,
        account_id: account_id.to_string(),
        name,
        scopes,
        key_hash: hash_secret(&secret),
        created_at: now_rfc3339(),
        revoked: false,
        revoked_at: None,
    };
    Ok(IssuedKey { key, secret })
}

/// The two writes that store `key` (listing + lookup), for one transaction.
pub fn key_writes(key: &ApiKey) -> Result<Vec<WriteOp>, DomainError> {
    let data = encode(key)?;
    Ok(vec![
        WriteOp::Put {
            item: Item::new(
                account_pk(&key.account_id),
                api_key_listing_sk(&key.key_id),
                data.clone(),
            ),
            condition: Condition::Absent,
        },
        WriteOp::Put {
            item: Item::new(api_key_lookup_pk(&key.key_id), API_KEY_LOOKUP_SK, data),
            condition: Condition::Absent,
        },
    ])
}

/// Active keys an account may have at once (revoked ones do not count).
pub const MAX_ACTIVE_KEYS: usize = 100;

/// Creates and stores a key of an existing account (at most [`MAX_ACTIVE_KEYS`] active; a soft
/// cap, as two creations at the same instant may both pass).
pub async fn create_key(
    store: &dyn Store,
    account_id: &str,
    name: &str,
    scopes: Vec<Scope>,
) -> Result<IssuedKey, DomainError> {
    let issued = issue(account_id, name, scopes)?;
    let active = account_keys(store, account_id)
        .await?
        .iter()
        .filter(|(key, _)| !key.revoked)
        .count();
    if active >= MAX_ACTIVE_KEYS {
        return Err(DomainError::Conflict {
            message: format!(
                "This account has {active} active API keys, the most it may have: revoke keys \
                 no longer used (DELETE /api-keys/{{key_id}}) first."
            ),
        });
    }
    store.transact(key_writes(&issued.key)?).await?;
    Ok(issued)
}

/// The key id a presented secret names, if it is shaped like one of ours.
pub fn key_id_of_secret(secret: &str) -> Option<String> {
    let rest = secret.strip_prefix(SECRET_PREFIX)?;
    let (id_part, random) = rest.split_once('_')?;
    let id_ok = id_part.len() == ULID_LEN && id_part.bytes().all(|b| b.is_ascii_alphanumeric());
    let random_ok = random.len() == SECRET_HEX_LEN && random.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && random_ok).then(|| format!("{KEY_ID_PREFIX}{id_part}"))
}

/// The active key a presented secret belongs to; `None` when it is malformed, unknown, revoked or
/// does not match.
/// The stored key `key_id` (revoked or not), without checking any secret.
pub async fn get_key(store: &dyn Store, key_id: &str) -> Result<Option<ApiKey>, DomainError> {
    match store
        .get(&api_key_lookup_pk(key_id), API_KEY_LOOKUP_SK)
        .await?
    {
        Some(item) => Ok(Some(decode(&item)?)),
        None => Ok(None),
    }
}

/// Whether `secret` is `key`'s (its hash compared in constant time) and the key is not revoked.
pub fn verifies(key: &ApiKey, secret: &str) -> bool {
    let presented = hash_secret(secret);
    let matches: bool = presented.as_bytes().ct_eq(key.key_hash.as_bytes()).into();
    matches && !key.revoked
}

pub async fn list_keys(
    store: &dyn Store,
    account_id: &str,
    limit: usize,
    offset: usize,
) -> Result<(Vec<ApiKey>, usize), DomainError> {
    let all: Vec<ApiKey> = account_keys(store, account_id)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let total = all.len();
    let page = all.into_iter().skip(offset).take(limit).collect();
    Ok((page, total))
}

/// Revokes one of the account's keys (revoking twice is harmless). Another account's key is
/// "not found", so existence does not leak. The account's last active admin key cannot be
/// revoked (409): nobody could manage the account's keys any more. The revocation commits only
/// while another admin key is still active (a condition on that key's record), so two admins
/// revoking each other at once cannot both succeed.
pub async fn revoke_key(
    store: &dyn Store,
    account_id: &str,
    key_id: &str,
) -> Result<ApiKey, DomainError> {
    let not_found =
        || DomainError::not_found(format!("API key {key_id} not found in this account"));
    if !key_id.starts_with(KEY_ID_PREFIX) {
        return Err(not_found());
    }
    for _ in 0..5 {
        let Some(item) = store
            .get(&account_pk(account_id), &api_key_listing_sk(key_id))
            .await?
        else {
            return Err(not_found());
        };
        let mut key: ApiKey = decode(&item)?;
        if key.account_id != account_id {
            return Err(not_found());
        }
        if key.revoked {
            return Ok(key);
        }
        let mut ops = Vec::with_capacity(3);
        if key.scopes.contains(&Scope::Admin) {
            let Some((other, other_rev)) = another_active_admin(store, account_id, key_id).await?
            else {
                return Err(DomainError::Conflict {
                    message: format!(
                        "{key_id} is this account's last active admin key: revoking it would \
                         leave nobody able to manage the account's keys. Create another admin \
                         key (POST /api-keys with scopes [\"admin\"]) first."
                    ),
                });
            };
            ops.push(WriteOp::Check {
                pk: account_pk(account_id),
                sk: api_key_listing_sk(&other.key_id),
                condition: Condition::Revision(other_rev),
            });
        }
        key.revoked = true;
        key.revoked_at = Some(now_rfc3339());
        let data = encode(&key)?;
        ops.push(WriteOp::Put {
            item: Item::new(
                account_pk(account_id),
                api_key_listing_sk(key_id),
                data.clone(),
            ),
            condition: Condition::Revision(item.rev),
        });
        ops.push(WriteOp::Put {
            item: Item::new(api_key_lookup_pk(key_id), API_KEY_LOOKUP_SK, data),
            condition: Condition::Exists,
        });
        match store.transact(ops).await {
            Ok(()) => return Ok(key),
            // The key, or the admin key that was to remain, changed meanwhile: look again.
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Conflict {
        message: "The account's keys kept changing while this one was being revoked; retry.".into(),
    })
}

/// An active admin key of the account other than `key_id`, with its record's revision.
async fn another_active_admin(
    store: &dyn Store,
    account_id: &str,
    key_id: &str,
) -> Result<Option<(ApiKey, u64)>, DomainError> {
    Ok(account_keys(store, account_id)
        .await?
        .into_iter()
        .find(|(key, _)| {
            key.key_id != key_id && !key.revoked && key.scopes.contains(&Scope::Admin)
        }))
}

/// The account's keys, newest first, with their records' revisions (at most
/// [`MAX_KEYS_PER_LISTING`]).
async fn account_keys(
    store: &dyn Store,
    account_id: &str,
) -> Result<Vec<(ApiKey, u64)>, DomainError> {
    let pk = account_pk(account_id);
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .query(&pk, API_KEY_LISTING_PREFIX, false, 1000, cursor.as_deref())
            .await?;
        for item in &page.items {
            all.push((decode::<ApiKey>(item)?, item.rev));
        }
        cursor = page.cursor;
        if cursor.is_none() || all.len() >= MAX_KEYS_PER_LISTING {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_secrets_name_their_key_and_hash_to_the_record() {
        let issued = issue("acct_1", "ci", vec![Scope::Read]).expect("issue");
        assert!(issued.secret.starts_with("plx_"));
        assert_eq!(
            key_id_of_secret(&issued.secret).as_deref(),
            Some(issued.key.key_id.as_str())
        );
        assert_eq!(hash_secret(&issued.secret), issued.key.key_hash);
        assert!(!issued.key.key_hash.contains(&issued.secret[30..]));
        let other = issue("acct_1", "ci", vec![Scope::Read]).expect("issue");
        assert_ne!(issued.secret, other.secret);
    }

    #[test]
    fn malformed_secrets_name_no_key() {
        for s in [
            "",
            "plx_",
            "plx_abc_def",
            "Bearer x",
            "plx_01hzzzzzzzzzzzzzzzzzzzzzzz_xyz",
        ] {
            assert_eq!(key_id_of_secret(s), None, "{s}");
        }
    }

    #[test]
    fn admin_implies_every_scope() {
        assert!(allows(&[Scope::Admin], Scope::Write));
        assert!(allows(&[Scope::Read, Scope::Predict], Scope::Predict));
        assert!(!allows(&[Scope::Read], Scope::Admin));
    }

    #[test]
    fn scope_lists_are_validated() {
        assert_eq!(
            Scope::parse_list(&["read", "read", "predict"]).ok(),
            Some(vec![Scope::Read, Scope::Predict])
        );
        assert!(Scope::parse_list::<&str>(&[]).is_err());
        assert!(Scope::parse_list(&["root"]).is_err());
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let issued = issue("acct_1", "ci", vec![Scope::Read]).expect("issue");
        assert!(!format!("{issued:?}").contains(&issued.secret));
    }
}
