//! The AWS blob store: one S3 bucket. Files stream in and out (`ByteStream::from_path`, body to
//! file), and uploads from clients go straight to S3 with presigned `PUT` URLs.

use super::{BlobError, Blobs, validate_key};
use crate::ports::aws_error::{AwsFailure, classify};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;

pub struct S3Blobs {
    client: Client,
    bucket: String,
}

fn sdk_err<E>(err: SdkError<E, HttpResponse>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match classify(&err) {
        AwsFailure::Transient(msg) => BlobError::Unavailable(msg),
        f => BlobError::Other(f.to_string()),
    }
}

fn io_err(context: &str, err: impl std::fmt::Display) -> BlobError {
    BlobError::Other(format!("{context}: {err}"))
}

impl S3Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Blobs {
            client,
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket (for tests and local setups; SAM creates the production bucket).
    pub async fn create_bucket(client: &Client, bucket: &str) -> Result<(), BlobError> {
        client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        validate_key(key)?;
        // Streams from disk; a single PUT holds up to 5 GB, far above the upload limit.
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| io_err("reading file to upload", e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(BlobError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(sdk_err(e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(format!("reading blob: {e}")))?;
        Ok(body.into_bytes())
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64, BlobError> {
        validate_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(BlobError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(sdk_err(e)),
        };
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| io_err("creating destination file", e))?;
        let mut body = out.body.into_async_read();
        let n = tokio::io::copy_buf(&mut body, &mut file)
            .await
            .map_err(|e| BlobError::Unavailable(format!("downloading blob: {e}")))?;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| io_err("writing destination file", e))?;
        Ok(n)
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(sdk_err(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn presign_put(&self, key: &str, expires_in: Duration) -> Result<String, BlobError> {
        validate_key(key)?;
        let config =
            PresigningConfig::expires_in(expires_in).map_err(|e| io_err("presigning", e))?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(sdk_err)?;
        Ok(request.uri().to_owned())
    }
}
