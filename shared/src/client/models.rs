//! Models: builds, versions and their status, descriptions, build logs, deployments, and the
//! ONNX artifact.

use super::{Client, ClientError, Page, Progress};
use crate::api::deployments::{DeployRequest, DeploymentList, DeploymentView};
use crate::api::models::{
    BuildAccepted, CreateModelRequest, DescribeView, LogList, ModelList, ModelView, VersionList,
    VersionStatusView, VersionView,
};
use reqwest::Method;
use std::io::Write;
use std::path::Path;

/// Which models `GET /models` lists.
#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    /// `PENDING`, `BUILDING`, `READY` or `ERROR`.
    pub status: Option<String>,
    /// `created_at` or `name`.
    pub sort_by: Option<String>,
    /// `asc` or `desc`.
    pub sort_dir: Option<String>,
    pub page: Page,
}

impl Client {
    /// Starts the first build of a new model.
    pub async fn create_model(
        &self,
        model_name: &str,
        request: &CreateModelRequest,
    ) -> Result<BuildAccepted, ClientError> {
        self.post(&["models", model_name], request).await
    }

    pub async fn list_models(&self, query: &ModelQuery) -> Result<ModelList, ClientError> {
        let mut pairs = query.page.pairs();
        for (name, value) in [
            ("status", &query.status),
            ("sort_by", &query.sort_by),
            ("sort_dir", &query.sort_dir),
        ] {
            if let Some(value) = value {
                pairs.push((name, value.clone()));
            }
        }
        self.get(&["models"], &pairs).await
    }

    pub async fn get_model(&self, model_name: &str) -> Result<ModelView, ClientError> {
        self.get(&["models", model_name], &[]).await
    }

    /// The model's versions, newest first.
    pub async fn list_versions(
        &self,
        model_name: &str,
        page: Page,
    ) -> Result<VersionList, ClientError> {
        self.get(&["models", model_name, "versions"], &page.pairs())
            .await
    }

    /// One version (`v2.0`, `v2`, `2` or `latest`).
    pub async fn get_version(
        &self,
        model_name: &str,
        version: &str,
    ) -> Result<VersionView, ClientError> {
        self.get(&["models", model_name, version], &[]).await
    }

    /// A version's build status and `build_progress`.
    pub async fn version_status(
        &self,
        model_name: &str,
        version: &str,
    ) -> Result<VersionStatusView, ClientError> {
        self.get(&["models", model_name, version, "status"], &[])
            .await
    }

    /// What a READY version is and how it was built.
    pub async fn describe(
        &self,
        model_name: &str,
        version: &str,
    ) -> Result<DescribeView, ClientError> {
        self.get(&["models", model_name, version, "describe"], &[])
            .await
    }

    /// A build's log lines, oldest first, from `page.offset` on.
    pub async fn build_logs(&self, job_id: &str, page: Page) -> Result<LogList, ClientError> {
        let mut pairs = page.pairs();
        pairs.push(("job_id", job_id.to_string()));
        self.get(&["models", "build-logs"], &pairs).await
    }

    /// Deploys a version (by default the newest READY one, to `production`).
    pub async fn deploy(
        &self,
        model_name: &str,
        request: &DeployRequest,
    ) -> Result<DeploymentView, ClientError> {
        self.post(&["models", model_name, "deploy"], request).await
    }

    pub async fn list_deployments(
        &self,
        model_name: &str,
        page: Page,
    ) -> Result<DeploymentList, ClientError> {
        self.get(&["models", model_name, "deployments"], &page.pairs())
            .await
    }

    pub async fn undeploy(
        &self,
        model_name: &str,
        deployment_id: &str,
    ) -> Result<DeploymentView, ClientError> {
        self.delete(&["models", model_name, "deployments", deployment_id])
            .await
    }

    /// Writes the version's ONNX file to `destination` (whole or not at all: it goes to a
    /// temporary file beside it first), reporting its bytes; returns its size.
    pub async fn download_artifact(
        &self,
        model_name: &str,
        version: &str,
        destination: &Path,
        progress: &dyn Progress,
    ) -> Result<u64, ClientError> {
        let url = self.url(&["models", model_name, version, "artifact"], &[]);
        let mut response = self
            .send(self.request(Method::GET, url.clone()), &url)
            .await?;
        if let Some(total) = response.content_length() {
            progress.set_total(total);
        }
        let folder = match destination.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut file = super::staged_file(folder)?;
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ClientError::connection(&url, e))?
        {
            file.write_all(&chunk)
                .map_err(|e| ClientError::file(destination, e))?;
            written += chunk.len() as u64;
            progress.advance(chunk.len() as u64);
        }
        file.as_file()
            .sync_all()
            .map_err(|e| ClientError::file(destination, e))?;
        file.persist(destination)
            .map_err(|e| ClientError::file(destination, e.error))?;
        Ok(written)
    }
}
