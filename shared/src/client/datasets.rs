//! Datasets: upload sessions (any size up to 500 MB, with progress), listing, profile, preview.

use super::{Client, ClientError, Page, Progress, error_of};
use crate::api::datasets::{
    CreateUploadRequest, DatasetList, DatasetPreview, DatasetView, DeletedDataset,
    UploadSessionView, UploadStatusView,
};
use crate::ingest::format::{FormatHints, detect_format};
use futures::TryStreamExt;
use reqwest::header::CONTENT_LENGTH;
use reqwest::{Body, Method, Url};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// How long [`Client::complete_upload`] waits for a completion running in the background
/// (the task function's own timeout is 15 minutes).
pub const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// What `complete` answers: the dataset (201), or the session being completed (202).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum CompleteAnswer {
    Dataset(Box<DatasetView>),
    Queued(UploadStatusView),
}

/// A local file about to be uploaded: what the upload session is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub size_bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// `csv` or `parquet`.
    pub format: String,
}

impl LocalFile {
    /// Reads `path` once: its size, SHA-256 and format (`format` when given, else from the
    /// extension or Parquet's magic bytes).
    pub async fn inspect(path: &Path, format: Option<&str>) -> Result<LocalFile, ClientError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ClientError::file(path, e))?;
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size_bytes = 0u64;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buffer)
                .await
                .map_err(|e| ClientError::file(path, e))?;
            if n == 0 {
                break;
            }
            if head.len() < 4 {
                head.extend_from_slice(&buffer[..n.min(4)]);
            }
            hasher.update(&buffer[..n]);
            size_bytes += n as u64;
        }
        if size_bytes == 0 {
            return Err(ClientError::Content(format!(
                "{} is empty: there is nothing to upload",
                path.display()
            )));
        }
        let file_name = path.file_name().and_then(|n| n.to_str());
        let format = detect_format(
            FormatHints {
                explicit: format,
                content_type: None,
                file_name,
            },
            &head,
        )
        .map_err(|e| {
            ClientError::Content(format!(
                "{}: {e} (here: name the file .csv or .parquet, or pass --format csv|parquet)",
                path.display()
            ))
        })?;
        Ok(LocalFile {
            size_bytes,
            sha256: hex::encode(hasher.finalize()),
            format: format.as_str().to_string(),
        })
    }
}

impl Client {
    /// The account's datasets, newest first.
    pub async fn list_datasets(&self, page: Page) -> Result<DatasetList, ClientError> {
        self.get(&["datasets"], &page.pairs()).await
    }

    /// A dataset and its profile.
    pub async fn get_dataset(&self, dataset_id: &str) -> Result<DatasetView, ClientError> {
        self.get(&["datasets", dataset_id], &[]).await
    }

    /// Its first `limit` rows (1–100; the server's default 20 when `None`).
    pub async fn preview_dataset(
        &self,
        dataset_id: &str,
        limit: Option<u32>,
    ) -> Result<DatasetPreview, ClientError> {
        let query: Vec<(&str, String)> = limit
            .map(|l| ("limit", l.to_string()))
            .into_iter()
            .collect();
        self.get(&["datasets", dataset_id, "preview"], &query).await
    }

    pub async fn delete_dataset(&self, dataset_id: &str) -> Result<DeletedDataset, ClientError> {
        self.delete(&["datasets", dataset_id]).await
    }

    /// Opens an upload session.
    pub async fn create_upload(
        &self,
        request: &CreateUploadRequest,
    ) -> Result<UploadSessionView, ClientError> {
        self.post(&["datasets", "uploads"], request).await
    }

    /// Sends the file to the session's signed URL (without the API key: the URL is the
    /// authorization, and S3 refuses a second one), streaming it and reporting its bytes.
    pub async fn put_upload(
        &self,
        session: &UploadSessionView,
        path: &Path,
        size_bytes: u64,
        progress: Arc<dyn Progress>,
    ) -> Result<(), ClientError> {
        let url = Url::parse(&session.upload_url).map_err(|e| ClientError::Decode {
            url: session.upload_url.clone(),
            reason: format!("the upload_url is not a URL: {e}"),
        })?;
        let method = Method::from_bytes(session.method.as_bytes()).unwrap_or(Method::PUT);
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ClientError::file(path, e))?;
        progress.set_total(size_bytes);
        let counted = progress.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .inspect_ok(move |chunk: &bytes::Bytes| counted.advance(chunk.len() as u64));
        let response = self
            .http
            .request(method, url.clone())
            // S3 takes no chunked body: say the length up front.
            .header(CONTENT_LENGTH, size_bytes)
            .body(Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| ClientError::connection(&url, e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(error_of(response, &url).await)
        }
    }

    /// Checks the uploaded file and makes it a dataset. A large file completed in the
    /// background (202 on AWS) is waited for: its session is polled every second until it is
    /// completed or failed, for at most [`COMPLETION_WAIT`].
    pub async fn complete_upload(&self, upload_id: &str) -> Result<DatasetView, ClientError> {
        let answer: CompleteAnswer = self
            .post_empty(&["datasets", "uploads", upload_id, "complete"])
            .await?;
        let mut status = match answer {
            CompleteAnswer::Dataset(dataset) => return Ok(*dataset),
            CompleteAnswer::Queued(status) => status,
        };
        let give_up = tokio::time::Instant::now() + COMPLETION_WAIT;
        loop {
            match (status.status.as_str(), &status.dataset_id) {
                ("completed", Some(dataset_id)) => return self.get_dataset(dataset_id).await,
                ("failed", _) => {
                    return Err(ClientError::Content(format!(
                        "upload {upload_id} could not be completed: {}",
                        status.error.as_deref().unwrap_or("no reason given")
                    )));
                }
                _ if tokio::time::Instant::now() >= give_up => {
                    return Err(ClientError::Content(format!(
                        "upload {upload_id} is still being completed after {} minutes; check \
                         GET /datasets/uploads/{upload_id} later",
                        COMPLETION_WAIT.as_secs() / 60
                    )));
                }
                _ => {}
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            status = self.upload_status(upload_id).await?;
        }
    }

    /// Where an upload session stands.
    pub async fn upload_status(&self, upload_id: &str) -> Result<UploadStatusView, ClientError> {
        self.get(&["datasets", "uploads", upload_id], &[]).await
    }

    /// The whole upload: inspect the file, open a session that checks its size and SHA-256,
    /// send it, complete the session.
    pub async fn upload_dataset(
        &self,
        path: &Path,
        name: &str,
        format: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<DatasetView, ClientError> {
        let local = LocalFile::inspect(path, format).await?;
        let session = self
            .create_upload(&CreateUploadRequest {
                name: name.to_string(),
                format: local.format.clone(),
                size_bytes: Some(local.size_bytes),
                sha256: Some(local.sha256.clone()),
            })
            .await?;
        self.put_upload(&session, path, local.size_bytes, progress)
            .await?;
        self.complete_upload(&session.upload_id).await
    }
}
