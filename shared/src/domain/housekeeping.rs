//! Housekeeping: what expires by itself on AWS (DynamoDB TTL, S3 lifecycle rules) has to be
//! swept on the embedded backend. `plexe serve` runs [`sweep`] at start and every
//! [`SWEEP_INTERVAL`].

use super::DomainError;
use super::layout::EXPIRING_PREFIXES;
use crate::ports::{Blobs, SqliteStore};
use std::time::Duration;

/// How often `plexe serve` sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// What one sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub expired_blobs: u64,
    pub expired_items: u64,
}

/// Deletes the blobs past their age under every [`EXPIRING_PREFIXES`] entry and, given the
/// embedded store, the items past their TTL.
pub async fn sweep(
    blobs: &dyn Blobs,
    store: Option<&SqliteStore>,
) -> Result<SweepReport, DomainError> {
    let mut report = SweepReport::default();
    for (prefix, days) in EXPIRING_PREFIXES {
        let age = Duration::from_secs(u64::from(*days) * 24 * 3600);
        report.expired_blobs += blobs.delete_older_than(prefix, age).await?;
    }
    if let Some(store) = store {
        report.expired_items = store.purge_expired().await?;
    }
    Ok(report)
}
