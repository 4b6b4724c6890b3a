//! Housekeeping: what expires by itself on AWS (DynamoDB TTL, S3 lifecycle rules) has to be
//! swept on the embedded backend. `plexe serve` runs [`sweep`] at start and every
//! [`SWEEP_INTERVAL`].

use super::layout::EXPIRING_PREFIXES;
use crate::ports::{BlobError, Blobs};
use std::time::Duration;

/// How often `plexe serve` sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// What one sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub expired_blobs: u64,
}

/// Deletes the blobs past their age under every [`EXPIRING_PREFIXES`] entry.
pub async fn sweep(blobs: &dyn Blobs) -> Result<SweepReport, BlobError> {
    let mut report = SweepReport::default();
    for (prefix, days) in EXPIRING_PREFIXES {
        let age = Duration::from_secs(u64::from(*days) * 24 * 3600);
        report.expired_blobs += blobs.delete_older_than(prefix, age).await?;
    }
    Ok(report)
}
