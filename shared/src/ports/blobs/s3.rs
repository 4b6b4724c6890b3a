//! The AWS blob store: one S3 bucket. Files stream in and out (`ByteStream::from_path`, body to
//! file), and uploads from clients go straight to S3 with presigned `PUT` URLs.

use super::{BlobError, Blobs, validate_key};
use crate::ports::aws_error::{AwsFailure, cause, classify};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter,
};
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;

pub struct S3Blobs {
    client: Client,
    bucket: String,
}

fn sdk_err<E>(err: SdkError<E, HttpResponse>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(&err) {
        AwsFailure::Transient(_) => BlobError::unavailable(cause(err)),
        _ => BlobError::other(cause(err)),
    }
}

fn io_err(context: &str, err: impl Into<crate::ports::Cause>) -> BlobError {
    BlobError::other(crate::ports::failed(context, err))
}

impl S3Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Blobs {
            client,
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket with a lifecycle rule expiring each `(prefix, days)` of `expiring`
    /// (for tests and local setups; the templates create the production bucket with the same
    /// rules, [`crate::domain::layout::EXPIRING_PREFIXES`]).
    pub async fn create_bucket(
        client: &Client,
        bucket: &str,
        expiring: &[(&str, u32)],
    ) -> Result<(), BlobError> {
        client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(sdk_err)?;
        let mut lifecycle = BucketLifecycleConfiguration::builder();
        for (prefix, days) in expiring {
            let rule = LifecycleRule::builder()
                .id(format!("expire-{}", prefix.trim_end_matches('/')))
                .filter(LifecycleRuleFilter::builder().prefix(*prefix).build())
                .status(ExpirationStatus::Enabled)
                .expiration(
                    LifecycleExpiration::builder()
                        .days(i32::try_from(*days).unwrap_or(i32::MAX))
                        .build(),
                )
                .build()
                .map_err(|e| io_err("lifecycle rule", e))?;
            lifecycle = lifecycle.rules(rule);
        }
        client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                lifecycle
                    .build()
                    .map_err(|e| io_err("lifecycle configuration", e))?,
            )
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }
}

impl S3Blobs {
    /// The object under `key`, its body not read yet; an absent one is `NotFound`.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, BlobError> {
        validate_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(sdk_err(e)),
        }
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    #[tracing::instrument(name = "blobs.put", level = "debug", skip(self, bytes), fields(bytes = bytes.len()))]
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

    #[tracing::instrument(name = "blobs.put_file", level = "debug", skip(self))]
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

    #[tracing::instrument(name = "blobs.get", level = "debug", skip(self))]
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        let out = self.get_object(key).await?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::unavailable(crate::ports::failed("reading blob", e)))?;
        Ok(body.into_bytes())
    }

    #[tracing::instrument(name = "blobs.get_to_file", level = "debug", skip(self))]
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64, BlobError> {
        let out = self.get_object(key).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| io_err("creating destination file", e))?;
        let mut body = out.body.into_async_read();
        let n = tokio::io::copy_buf(&mut body, &mut file)
            .await
            .map_err(|e| BlobError::unavailable(crate::ports::failed("downloading blob", e)))?;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| io_err("writing destination file", e))?;
        Ok(n)
    }

    #[tracing::instrument(name = "blobs.size", level = "debug", skip(self))]
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

    #[tracing::instrument(name = "blobs.delete", level = "debug", skip(self))]
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

    #[tracing::instrument(name = "blobs.delete_older_than", level = "debug", skip(self))]
    async fn delete_older_than(&self, prefix: &str, age: Duration) -> Result<u64, BlobError> {
        let cutoff = crate::ids::now_epoch() - i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut deleted = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_err)?;
            for object in page.contents() {
                let old = object.last_modified().is_some_and(|t| t.secs() < cutoff);
                if let (true, Some(key)) = (old, object.key()) {
                    self.delete(key).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    #[tracing::instrument(name = "blobs.presign_put", level = "debug", skip(self))]
    async fn presign_put(
        &self,
        key: &str,
        expires_in: Duration,
        size: Option<u64>,
    ) -> Result<String, BlobError> {
        validate_key(key)?;
        let config =
            PresigningConfig::expires_in(expires_in).map_err(|e| io_err("presigning", e))?;
        let mut put = self.client.put_object().bucket(&self.bucket).key(key);
        if let Some(size) = size {
            // Signed, so S3 refuses a PUT of any other length.
            put = put.content_length(i64::try_from(size).unwrap_or(i64::MAX));
        }
        let request = put.presigned(config).await.map_err(sdk_err)?;
        Ok(request.uri().to_owned())
    }

    #[tracing::instrument(name = "blobs.presign_get", level = "debug", skip(self))]
    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        file_name: &str,
    ) -> Result<Option<String>, BlobError> {
        validate_key(key)?;
        let config =
            PresigningConfig::expires_in(expires_in).map_err(|e| io_err("presigning", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type("application/octet-stream")
            .response_content_disposition(format!("attachment; filename=\"{file_name}\""))
            .presigned(config)
            .await
            .map_err(sdk_err)?;
        Ok(Some(request.uri().to_owned()))
    }
}
