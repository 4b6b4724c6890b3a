//! The ports to the outside world. Each is a trait shaped like its access patterns, with an
//! embedded adapter (SQLite file, blob folder, durable in-process queue) and an AWS adapter
//! (DynamoDB single table, S3, SQS). Domain code is written once against these traits.

pub mod absent;
mod aws_error;
pub mod blobs;
pub mod queue;
pub mod sqlite_file;
pub mod store;

pub use blobs::{BlobError, Blobs, FolderBlobs, S3Blobs};

/// The underlying failure of a port error, kept as its `source()`.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What an adapter was doing when `source` failed (the source is kept, not flattened to text).
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct Failed {
    context: String,
    #[source]
    source: Cause,
}

/// `source`, with what was being done.
pub fn failed(context: impl Into<String>, source: impl Into<Cause>) -> Cause {
    Box::new(Failed {
        context: context.into(),
        source: source.into(),
    })
}
pub use queue::{Queue, QueueError, QueueMessage, SqliteQueue, SqsQueue};
pub use store::{Condition, DynamoStore, Item, Page, SqliteStore, Store, StoreError, WriteOp};
