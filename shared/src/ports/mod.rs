//! The ports to the outside world. Each is a trait shaped like its access patterns, with an
//! embedded adapter (SQLite file, blob folder, durable in-process queue) and an AWS adapter
//! (DynamoDB single table, S3, SQS). Domain code is written once against these traits.

mod aws_error;
pub mod blobs;
pub mod queue;
pub mod sqlite_file;
pub mod store;

pub use blobs::{BlobError, Blobs, EXPIRING_PREFIXES, FolderBlobs, S3Blobs};
pub use queue::{Queue, QueueError, QueueMessage, SqliteQueue, SqsQueue};
pub use store::{Condition, DynamoStore, Item, Page, SqliteStore, Store, StoreError, WriteOp};
