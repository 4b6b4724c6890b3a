//! Optimized plans kept per process, least recently used evicted first under a memory budget.
//! Artifacts are immutable, so a key (e.g. the artifact's blob key) never needs invalidation.

use super::model::{LoadError, OnnxModel};
use lru::LruCache;
use std::sync::{Arc, Mutex};

/// A loaded plan's memory, estimated from its artifact: tract holds the initializers and our
/// flattened trees, about the size of the file, plus the parsed graph around them.
fn estimated_bytes(model: &OnnxModel) -> usize {
    model.artifact_bytes().saturating_mul(2).max(64 * 1024)
}

pub struct PlanCache {
    inner: Mutex<Entries>,
    capacity_bytes: usize,
}

struct Entries {
    lru: LruCache<String, (Arc<OnnxModel>, usize)>,
    used_bytes: usize,
}

impl PlanCache {
    pub fn new(capacity_bytes: usize) -> PlanCache {
        PlanCache {
            inner: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                used_bytes: 0,
            }),
            capacity_bytes,
        }
    }

    /// The cached model for `key`, or the one `load` returns (then cached). Loading happens
    /// outside the lock, so a slow load does not block requests for other models; two
    /// concurrent first requests for one key may both load, and one result is kept.
    pub fn get_or_load<E>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Arc<OnnxModel>, CacheError<E>> {
        if let Some(model) = self.get(key) {
            return Ok(model);
        }
        let bytes = load().map_err(CacheError::Fetch)?;
        let model = Arc::new(OnnxModel::load(&bytes).map_err(CacheError::Load)?);
        Ok(self.insert(key, model))
    }

    pub fn get(&self, key: &str) -> Option<Arc<OnnxModel>> {
        let mut entries = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.lru.get(key).map(|(m, _)| m.clone())
    }

    /// Inserts (or keeps the existing entry for) `key`, then evicts the least recently used
    /// entries until the budget holds; the entry just used always stays.
    pub fn insert(&self, key: &str, model: Arc<OnnxModel>) -> Arc<OnnxModel> {
        let mut entries = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((existing, _)) = entries.lru.get(key) {
            return existing.clone();
        }
        let size = estimated_bytes(&model);
        entries.lru.put(key.to_string(), (model.clone(), size));
        entries.used_bytes += size;
        while entries.used_bytes > self.capacity_bytes && entries.lru.len() > 1 {
            match entries.lru.pop_lru() {
                Some((_, (_, evicted))) => entries.used_bytes -= evicted,
                None => break,
            }
        }
        model
    }

    /// Counts `extra` more bytes against `key`'s entry (an explainer attached to its model,
    /// say), then evicts as [`PlanCache::insert`] does; nothing when the entry is gone.
    pub fn grow(&self, key: &str, extra: usize) {
        let mut entries = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some((_, size)) = entries.lru.get_mut(key) else {
            return;
        };
        *size += extra;
        entries.used_bytes += extra;
        while entries.used_bytes > self.capacity_bytes && entries.lru.len() > 1 {
            match entries.lru.pop_lru() {
                Some((_, (_, evicted))) => entries.used_bytes -= evicted,
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .lru
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated memory of the cached plans.
    pub fn used_bytes(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .used_bytes
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError<E> {
    #[error("could not fetch the model artifact: {0}")]
    Fetch(E),
    #[error(transparent)]
    Load(LoadError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::pipeline::{
        Feature, InputSpec, LinearModel, Model, NumericTerm, Pipeline, Task,
    };
    use crate::ingest::ColumnType;

    /// A tiny regression model (its estimated size is the 64 KiB floor).
    fn model() -> Arc<OnnxModel> {
        let pipeline = Pipeline {
            target: "y".into(),
            task: Task::Regression,
            inputs: vec![InputSpec {
                name: "x".into(),
                kind: ColumnType::Float,
            }],
            features: vec![Feature::Numeric { input: 0 }],
            models: vec![Model::Linear(LinearModel {
                intercept: vec![1.0],
                numeric: vec![NumericTerm {
                    feature: 0,
                    fill: 0.0,
                    weights: vec![2.0],
                    mean: 0.0,
                }],
                categorical: Vec::new(),
            })],
            weights: vec![1.0],
        };
        let bytes = crate::onnx::export(&pipeline, &[]).expect("exports");
        Arc::new(OnnxModel::load(&bytes).expect("loads"))
    }

    #[test]
    fn the_budget_evicts_the_least_recently_used_and_counts_what_grows() {
        const KIB: usize = 1024;
        let cache = PlanCache::new(200 * KIB);
        for key in ["a", "b", "c"] {
            cache.insert(key, model());
        }
        assert_eq!((cache.len(), cache.used_bytes()), (3, 192 * KIB));
        cache.insert("d", model());
        assert!(
            cache.get("a").is_none(),
            "the least recently used goes first"
        );
        assert_eq!(cache.len(), 3);
        // An explainer attached to `b` counts against it: the others go, `b` stays.
        cache.grow("b", 100 * KIB);
        assert!(cache.get("b").is_some());
        assert_eq!((cache.len(), cache.used_bytes()), (1, 164 * KIB));
        // A key no longer cached is not counted.
        cache.grow("a", 100 * KIB);
        assert_eq!(cache.used_bytes(), 164 * KIB);
    }
}
