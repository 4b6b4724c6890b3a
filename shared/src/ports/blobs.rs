//! The blob port: immutable bytes by key (datasets, ONNX artifacts, upload staging).

use async_trait::async_trait;
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found: {0}")]
    NotFound(String),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    #[error("blob store error: {0}")]
    Other(String),
}

#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError>;

    /// Stores the content of a local file without reading it whole into memory.
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;

    async fn get(&self, key: &str) -> Result<Bytes, BlobError>;

    /// Streams the blob into a local file (for large datasets) and returns its size.
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64, BlobError>;

    /// Size in bytes, or `None` if absent.
    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError>;

    /// Deleting an absent blob succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// A URL that accepts one HTTP `PUT` of the blob's bytes until `expires_in` has passed.
    /// S3: a presigned URL. Embedded: a signed URL served by `plexe serve` itself.
    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError>;
}
