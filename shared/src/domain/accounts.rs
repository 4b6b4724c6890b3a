//! Accounts (tenants): `acct_…`, a name, a rate-limit tier and an optional per-account override.
//!
//! Item: `ACCT#<account_id>` / `ACCOUNT`. The local server's first start also writes the marker
//! `SYSTEM` / `DEFAULT_ACCOUNT` in the same transaction as the default account, so two servers
//! starting on one empty data dir cannot both create one.

use super::api_keys::{self, IssuedKey, Scope};
use super::layout::{ACCOUNT_SK, DEFAULT_ACCOUNT_SK, SYSTEM_PK, account_pk};
use super::{DomainError, decode, encode};
use crate::config::Limits;
use crate::ids::{new_id, now_rfc3339};
use crate::ports::{Condition, Item, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

pub const DEFAULT_ACCOUNT_NAME: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Basic,
    Pro,
    Enterprise,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl FromStr for Tier {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "basic" => Ok(Tier::Basic),
            "pro" => Ok(Tier::Pro),
            "enterprise" => Ok(Tier::Enterprise),
            other => Err(DomainError::validation(
                format!("unknown tier {other:?}; use basic, pro or enterprise"),
                "tier",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub name: String,
    pub tier: Tier,
    /// Overrides the tier's requests per minute (how enterprise accounts get their custom limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    pub created_at: String,
}

impl Account {
    /// Requests per one-minute window: the account's override, else its tier's under
    /// `limits`; `None` is unlimited.
    pub fn requests_per_minute(&self, limits: &Limits) -> Option<u32> {
        self.rate_limit_per_minute
            .or(limits.requests_per_minute(self.tier))
    }
}

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub tier: Tier,
    pub rate_limit_per_minute: Option<u32>,
}

pub async fn get_account(
    store: &dyn Store,
    account_id: &str,
) -> Result<Option<Account>, DomainError> {
    match store.get(&account_pk(account_id), ACCOUNT_SK).await? {
        Some(item) => Ok(Some(decode(&item)?)),
        None => Ok(None),
    }
}

fn validate_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::validation(
            "account name must be 1 to 100 characters",
            "name",
        ));
    }
    Ok(name.to_string())
}

fn account_write(account: &Account) -> Result<WriteOp, DomainError> {
    Ok(WriteOp::Put {
        item: Item::new(
            account_pk(&account.account_id),
            ACCOUNT_SK,
            encode(account)?,
        ),
        condition: Condition::Absent,
    })
}

fn build_account(new: NewAccount) -> Result<Account, DomainError> {
    Ok(Account {
        account_id: new_id("acct"),
        name: validate_name(&new.name)?,
        tier: new.tier,
        rate_limit_per_minute: new.rate_limit_per_minute,
        created_at: now_rfc3339(),
    })
}

/// Creates an account together with its first admin key, in one transaction.
pub async fn create_account_with_admin_key(
    store: &dyn Store,
    new: NewAccount,
) -> Result<(Account, IssuedKey), DomainError> {
    let account = build_account(new)?;
    let issued = api_keys::issue(&account.account_id, "admin", vec![Scope::Admin])?;
    let mut ops = vec![account_write(&account)?];
    ops.extend(api_keys::key_writes(&issued.key)?);
    store.transact(ops).await?;
    Ok((account, issued))
}

/// On a store that has never had one, creates the `default` account (enterprise, no request-rate
/// limit: it is the machine owner's) with an admin key. `None` when it already exists.
pub async fn ensure_default_account(
    store: &dyn Store,
) -> Result<Option<(Account, IssuedKey)>, DomainError> {
    if store.get(SYSTEM_PK, DEFAULT_ACCOUNT_SK).await?.is_some() {
        return Ok(None);
    }
    let account = build_account(NewAccount {
        name: DEFAULT_ACCOUNT_NAME.to_string(),
        tier: Tier::Enterprise,
        rate_limit_per_minute: None,
    })?;
    let issued = api_keys::issue(&account.account_id, "admin", vec![Scope::Admin])?;
    let marker = Item::new(
        SYSTEM_PK,
        DEFAULT_ACCOUNT_SK,
        serde_json::json!({ "account_id": account.account_id, "created_at": account.created_at }),
    );
    let mut ops = vec![
        WriteOp::Put {
            item: marker,
            condition: Condition::Absent,
        },
        account_write(&account)?,
    ];
    ops.extend(api_keys::key_writes(&issued.key)?);
    match store.transact(ops).await {
        Ok(()) => Ok(Some((account, issued))),
        // Another process created it between our check and our write.
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_have_their_limits_and_overrides_win() {
        let mut a = Account {
            account_id: "acct_x".into(),
            name: "x".into(),
            tier: Tier::Basic,
            rate_limit_per_minute: None,
            created_at: now_rfc3339(),
        };
        let limits = Limits::default();
        assert_eq!(a.requests_per_minute(&limits), Some(100));
        a.tier = Tier::Pro;
        assert_eq!(a.requests_per_minute(&limits), Some(500));
        a.tier = Tier::Enterprise;
        assert_eq!(a.requests_per_minute(&limits), None);
        a.rate_limit_per_minute = Some(5000);
        assert_eq!(a.requests_per_minute(&limits), Some(5000));
    }

    #[test]
    fn tier_parses_only_known_words() {
        assert_eq!("pro".parse::<Tier>().ok(), Some(Tier::Pro));
        assert!("gold".parse::<Tier>().is_err());
    }
}
