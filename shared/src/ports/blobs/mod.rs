//! The blob port: immutable bytes by key (datasets, ONNX artifacts, upload staging).

use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod folder;
mod s3;

pub use folder::{FolderBlobs, private_create};
pub use s3::S3Blobs;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under this key.
    #[error("blob not found: {0}")]
    NotFound(String),
    /// Worth retrying later.
    #[error("blob store unavailable: {0}")]
    Unavailable(#[source] super::Cause),
    #[error("blob store error: {0}")]
    Other(#[source] super::Cause),
}

impl BlobError {
    pub fn unavailable(cause: impl Into<super::Cause>) -> Self {
        BlobError::Unavailable(cause.into())
    }

    pub fn other(cause: impl Into<super::Cause>) -> Self {
        BlobError::Other(cause.into())
    }
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

    /// A URL that accepts one HTTP `PUT` of the blob's bytes until `expires_in` has passed, of
    /// exactly `size` bytes when given (S3 signs the `Content-Length`; the folder's token carries
    /// it). S3: a presigned URL. Embedded: a signed URL served by `plexe serve` itself.
    async fn presign_put(
        &self,
        key: &str,
        expires_in: Duration,
        size: Option<u64>,
    ) -> Result<String, BlobError>;

    /// A URL that answers `GET`s of the blob until `expires_in` has passed, as an attachment
    /// named `file_name`, for blobs too large to pass through an API function's answer. S3: a
    /// presigned URL. `None` where the API serves every blob itself (the embedded folder: its
    /// server has no answer size limit).
    async fn presign_get(
        &self,
        _key: &str,
        _expires_in: Duration,
        _file_name: &str,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    /// Deletes the blobs under `prefix` written more than `age` ago; returns how many went. For
    /// prefixes whose blobs must not outlive what points at them
    /// ([`crate::domain::layout::EXPIRING_PREFIXES`]):
    /// the folder has no lifecycle of its own, so `plexe serve` sweeps it periodically; on S3 the
    /// bucket's lifecycle rules do the same, and this is the on-demand equivalent.
    async fn delete_older_than(&self, prefix: &str, age: Duration) -> Result<u64, BlobError>;

    /// The blob's file on this machine, when the store keeps blobs as local files (the embedded
    /// folder), so readers can use it in place instead of copying it out; `None` otherwise (S3).
    /// The path may name no file when the blob is absent.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
}

/// Accepts keys that are relative paths of safe segments (`datasets/ds_01/data.csv`): ASCII
/// letters, digits and `-_.=`, no empty, `.` or `..` segment, no segment starting with `.`. The
/// folder adapter maps keys to paths, so this is what keeps a key inside the blob folder; S3
/// enforces the same rule so both backends accept the same keys.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
        });
    if ok {
        Ok(())
    } else {
        Err(BlobError::other(format!("invalid blob key {key:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_key;

    #[test]
    fn keys_stay_inside_the_blob_folder() {
        for good in ["a", "datasets/ds_01/data.csv", "models/m_1/v=2/model.onnx"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            ".tmp/x",
            "a/./b",
            "a\\b",
            "a b",
            "é",
        ] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }
}
