//! The ports to the outside world. Each is a trait shaped like its access patterns, with an
//! embedded adapter (SQLite file, blob folder, durable in-process queue) and an AWS adapter
//! (DynamoDB single table, S3, SQS). Domain code is written once against these traits.

pub mod blobs;
pub mod queue;
pub mod store;

pub use blobs::{BlobError, Blobs};
pub use queue::{Queue, QueueError, QueueMessage};
pub use store::{Condition, Item, Page, Store, StoreError, WriteOp};
