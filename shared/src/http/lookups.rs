//! The reads every keyed request makes (its API key, its account, and for a prediction the
//! deployed version the path names), kept in bounded in-process caches so a warm request makes
//! no store round trip for them. On Lambda the caches live as long as the execution
//! environment, across invocations.
//!
//! **Staleness.** An entry is served for at most [`LOOKUP_TTL`] after the read that filled it
//! *began*, so a change written anywhere (another process, another Lambda) is seen within that
//! time: a revoked key, a key with other scopes, an account's new limit, an undeployed or
//! deleted version. A change made through this process is seen at once: its handler forgets
//! the entries it touched. Only what was found and usable is cached (an unknown key, a version
//! not deployed), so a new key or a new deployment is never refused for a stale absence.
//!
//! **What is not cached.** The key's secret is compared with the cached hash on every request
//! (constant time), and the rate-limit count is incremented in the store on every request of a
//! limited account, so limits stay exact across processes.

use crate::domain::accounts::Account;
use crate::domain::api_keys::ApiKey;
use crate::domain::layout::ModelName;
use crate::domain::models::{VersionRef, version_label};
use lru::LruCache;
use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cached read may be served: the most a revocation or undeploy made elsewhere
/// waits before it takes effect here.
pub const LOOKUP_TTL: Duration = Duration::from_millis(1000);
/// Entries per cache. Keys and accounts are small (a few hundred bytes); a served version is
/// a number and an artifact key. At the bound the least recently used goes first.
pub const LOOKUP_CAPACITY: usize = 10_000;

/// A bounded LRU map whose entries expire [`LOOKUP_TTL`] after the read that filled them began.
pub struct ReadCache<K: Hash + Eq, V> {
    entries: Mutex<LruCache<K, (Instant, V)>>,
    ttl: Duration,
}

impl<K: Hash + Eq + Clone, V: Clone> ReadCache<K, V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        ReadCache {
            entries: Mutex::new(LruCache::new(capacity)),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<K, (Instant, V)>> {
        // A panic while holding the lock leaves a consistent map (no call inside can panic
        // half-way through an update), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry for `key`, if its read began less than the TTL ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((read_at, value)) if read_at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value`, read by a read that began at `read_at` (taken before the read, so the
    /// entry never outlives a change the read may have missed by more than the TTL).
    pub fn insert(&self, key: K, value: V, read_at: Instant) {
        if read_at.elapsed() < self.ttl {
            self.lock().put(key, (read_at, value));
        }
    }

    pub fn remove(&self, key: &K) {
        self.lock().pop(key);
    }

    /// Removes every entry whose key `matches`.
    pub fn remove_where(&self, matches: impl Fn(&K) -> bool) {
        let mut entries = self.lock();
        let doomed: Vec<K> = entries
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            entries.pop(&key);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which version a prediction path names: account, model and the reference as written
/// (`latest`, or a number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServedPath {
    pub account_id: String,
    pub model_name: String,
    pub version: Option<u32>,
}

impl ServedPath {
    pub fn new(account_id: &str, model_name: &ModelName, reference: VersionRef) -> Self {
        ServedPath {
            account_id: account_id.to_string(),
            model_name: model_name.as_str().to_string(),
            version: match reference {
                VersionRef::Number(n) => Some(n),
                VersionRef::Latest => None,
            },
        }
    }
}

/// A READY, deployed version: what a prediction needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedVersion {
    pub number: u32,
    /// The blob key of its ONNX artifact (the plan cache's key).
    pub artifact_key: String,
    /// The blob key of its pipeline (explanations), if it has one.
    pub pipeline_key: Option<String>,
}

impl ServedVersion {
    pub fn label(&self) -> String {
        version_label(self.number)
    }
}

/// The caches of one process.
pub struct Lookups {
    /// By key id. The entry holds the secret's hash, compared on every request.
    pub keys: ReadCache<String, Arc<ApiKey>>,
    /// By account id.
    pub accounts: ReadCache<String, Arc<Account>>,
    pub served: ReadCache<ServedPath, ServedVersion>,
}

impl Default for Lookups {
    fn default() -> Self {
        Lookups::new(LOOKUP_CAPACITY, LOOKUP_TTL)
    }
}

impl Lookups {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Lookups {
            keys: ReadCache::new(capacity, ttl),
            accounts: ReadCache::new(capacity, ttl),
            served: ReadCache::new(capacity, ttl),
        }
    }

    /// After a key was revoked through this process.
    pub fn forget_key(&self, key_id: &str) {
        self.keys.remove(&key_id.to_string());
    }

    /// After a model was deployed, undeployed or deleted through this process: every path
    /// naming it (any version, `latest` included).
    pub fn forget_model(&self, account_id: &str, model_name: &ModelName) {
        self.served
            .remove_where(|p| p.account_id == account_id && p.model_name == model_name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl_counted_from_the_read() {
        let cache: ReadCache<u32, &str> = ReadCache::new(10, Duration::from_millis(50));
        let read_at = Instant::now();
        cache.insert(1, "a", read_at);
        assert_eq!(cache.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            cache.get(&1),
            None,
            "an entry older than the TTL is not served"
        );
        // A read that began longer ago than the TTL is not kept at all.
        cache.insert(2, "b", read_at);
        assert_eq!(cache.get(&2), None);
    }

    #[test]
    fn the_bound_evicts_the_least_recently_used() {
        let cache: ReadCache<u32, u32> = ReadCache::new(2, Duration::from_secs(60));
        let now = Instant::now();
        cache.insert(1, 1, now);
        cache.insert(2, 2, now);
        assert_eq!(cache.get(&1), Some(1));
        cache.insert(3, 3, now);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&2), None, "2 was the least recently used");
        assert_eq!(cache.get(&1), Some(1));
        assert_eq!(cache.get(&3), Some(3));
    }

    #[test]
    fn forget_model_drops_every_path_of_that_model_only() {
        let lookups = Lookups::new(10, Duration::from_secs(60));
        let churn = ModelName::existing("churn").expect("name");
        let other = ModelName::existing("other").expect("name");
        let now = Instant::now();
        let served = ServedVersion {
            number: 1,
            artifact_key: "k".into(),
            pipeline_key: None,
        };
        for (acct, name, r) in [
            ("a", &churn, VersionRef::Latest),
            ("a", &churn, VersionRef::Number(1)),
            ("a", &other, VersionRef::Latest),
            ("b", &churn, VersionRef::Latest),
        ] {
            lookups
                .served
                .insert(ServedPath::new(acct, name, r), served.clone(), now);
        }
        lookups.forget_model("a", &churn);
        assert_eq!(lookups.served.len(), 2);
        assert!(
            lookups
                .served
                .get(&ServedPath::new("a", &other, VersionRef::Latest))
                .is_some()
        );
        assert!(
            lookups
                .served
                .get(&ServedPath::new("b", &churn, VersionRef::Latest))
                .is_some()
        );
    }
}
