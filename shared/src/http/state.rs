//! What every handler can reach: the three ports (and, on the embedded backend, the blob folder
//! itself, which verifies the signed upload URLs `plexe serve` accepts).

use crate::config::{Backends, Config};
use crate::http::lookups::Lookups;
use crate::http::routes::health::StoreCheck;
use crate::ports::{Blobs, FolderBlobs, Queue, Store};
#[cfg(feature = "serving")]
use crate::serving::PlanCache;
use std::sync::Arc;

/// Memory budget of the per-process cache of optimized model plans.
#[cfg(feature = "serving")]
pub const PLAN_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Shared by every request; a clone is one reference count (layers and extractors clone it
/// several times per request).
#[derive(Clone)]
pub struct AppState(Arc<AppResources>);

/// What [`AppState`] holds.
pub struct AppResources {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn Blobs>,
    pub queue: Arc<dyn Queue>,
    /// The task queue: long work handed to the task worker (on AWS the task function, when
    /// configured; on `plexe serve` its own worker).
    pub tasks: Option<Arc<dyn Queue>>,
    /// Set on the embedded backend only.
    pub folder_blobs: Option<Arc<FolderBlobs>>,
    /// Optimized tract plans of the versions served by this process, keyed by artifact.
    #[cfg(feature = "serving")]
    pub plans: Arc<PlanCache>,
    /// The key, account and deployed-version reads of keyed requests (at most 1 s stale).
    pub lookups: Arc<Lookups>,
    /// The process's configuration, read once at start.
    pub config: Arc<Config>,
    /// The last answer of the store to `/health`.
    pub store_check: Arc<StoreCheck>,
}

impl AppState {
    pub fn new(backends: Backends, config: Config) -> Self {
        AppState(Arc::new(AppResources {
            store: backends.store,
            blobs: backends.blobs,
            queue: backends.queue,
            tasks: backends.tasks,
            folder_blobs: backends.folder_blobs,
            #[cfg(feature = "serving")]
            plans: Arc::new(PlanCache::new(PLAN_CACHE_BYTES)),
            lookups: Arc::new(Lookups::default()),
            config: Arc::new(config),
            store_check: Arc::new(StoreCheck::default()),
        }))
    }

    /// Where large upload completions are queued: the task queue on AWS, where an API function
    /// has 29 s; none on `plexe serve` (the embedded folder), which has no request time limit
    /// and completes them in the request.
    pub fn completion_queue(&self) -> Option<&dyn crate::ports::Queue> {
        if self.folder_blobs.is_some() {
            None
        } else {
            self.tasks.as_deref()
        }
    }

    /// The same ports and configuration with caches of its own, as another process on the
    /// same backend (another Lambda, another `plexe serve` on the data dir) has.
    pub fn with_own_caches(&self) -> Self {
        let r = &self.0;
        AppState(Arc::new(AppResources {
            store: r.store.clone(),
            blobs: r.blobs.clone(),
            queue: r.queue.clone(),
            tasks: r.tasks.clone(),
            folder_blobs: r.folder_blobs.clone(),
            #[cfg(feature = "serving")]
            plans: Arc::new(PlanCache::new(PLAN_CACHE_BYTES)),
            lookups: Arc::new(Lookups::default()),
            config: r.config.clone(),
            store_check: Arc::new(StoreCheck::default()),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppResources;

    fn deref(&self) -> &AppResources {
        &self.0
    }
}
