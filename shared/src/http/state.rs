//! What every handler can reach: the three ports (and, on the embedded backend, the blob folder
//! itself, which verifies the signed upload URLs `plexe serve` accepts).

use crate::config::Backends;
use crate::ports::{Blobs, FolderBlobs, Queue, Store};
use crate::serving::PlanCache;
use std::sync::Arc;

/// Memory budget of the per-process cache of optimized model plans.
pub const PLAN_CACHE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn Blobs>,
    pub queue: Arc<dyn Queue>,
    /// Set on the embedded backend only.
    pub folder_blobs: Option<Arc<FolderBlobs>>,
    /// Optimized tract plans of the versions served by this process, keyed by artifact.
    pub plans: Arc<PlanCache>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>, queue: Arc<dyn Queue>) -> Self {
        AppState {
            store,
            blobs,
            queue,
            folder_blobs: None,
            plans: Arc::new(PlanCache::new(PLAN_CACHE_BYTES)),
        }
    }
}

impl From<Backends> for AppState {
    fn from(b: Backends) -> Self {
        AppState {
            store: b.store,
            blobs: b.blobs,
            queue: b.queue,
            folder_blobs: b.folder_blobs,
            plans: Arc::new(PlanCache::new(PLAN_CACHE_BYTES)),
        }
    }
}
