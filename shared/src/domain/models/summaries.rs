//! What a model's listing shows, joined here once for `GET /models` and `GET /models/{name}`:
//! the model, its newest version (whose status is the model's), its newest READY version
//! (metrics, schemas) and the deployment that serves it (`production`, else any active one).

use super::{Model, ModelVersion, VersionStatus, jobs};
use crate::domain::DomainError;
use crate::domain::deployments::{self, ActiveDeployment, DEFAULT_ENVIRONMENT};
use crate::domain::layout::{ACTIVE_DEPLOYMENT_PREFIX, ModelName, account_pk};
use crate::ports::{Blobs, Store};
use std::collections::HashMap;

/// A model with what its listing shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    pub model: Model,
    pub latest: Option<ModelVersion>,
    pub ready: Option<ModelVersion>,
    pub serving: Option<ActiveDeployment>,
}

impl ModelSummary {
    /// The READY version's whole build record (schemas come from it).
    async fn with_build_detail(mut self, blobs: &dyn Blobs) -> Result<Self, DomainError> {
        if let Some(ready) = self.ready.take() {
            self.ready = Some(super::with_build_detail(blobs, ready).await?);
        }
        Ok(self)
    }

    fn of(model: Model, versions: &[&ModelVersion], active: &[&ActiveDeployment]) -> Self {
        let latest = versions
            .iter()
            .max_by_key(|v| v.number)
            .map(|v| (*v).clone());
        let ready = versions
            .iter()
            .filter(|v| v.status == VersionStatus::Ready)
            .max_by_key(|v| v.number)
            .map(|v| (*v).clone());
        let serving = active
            .iter()
            .find(|a| a.environment.as_str() == DEFAULT_ENVIRONMENT)
            .or_else(|| active.first())
            .map(|a| (*a).clone());
        ModelSummary {
            model,
            latest,
            ready,
            serving,
        }
    }
}

/// How `GET /models` filters, sorts and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelListing {
    /// Only models whose newest version has this status.
    pub status: Option<VersionStatus>,
    /// By name, else by creation time (then name).
    pub by_name: bool,
    pub ascending: bool,
    pub limit: usize,
    pub offset: usize,
}

/// One page of the account's models and how many match in all.
pub async fn list_summaries(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    listing: ModelListing,
) -> Result<(Vec<ModelSummary>, usize), DomainError> {
    let mut all = super::list_models(store, account_id).await?;
    let versions = super::list_all_versions(store, account_id).await?;
    let mut by_model: HashMap<&str, Vec<&ModelVersion>> = HashMap::new();
    for v in &versions {
        by_model.entry(v.model_name.as_str()).or_default().push(v);
    }
    let active: Vec<ActiveDeployment> = super::query_all(
        store,
        &account_pk(account_id),
        ACTIVE_DEPLOYMENT_PREFIX,
        true,
    )
    .await?
    .iter()
    .map(crate::domain::decode)
    .collect::<Result<_, DomainError>>()?;
    let status_of = |m: &Model| {
        by_model
            .get(m.model_name.as_str())
            .and_then(|vs| vs.iter().max_by_key(|v| v.number).map(|v| v.status))
    };
    if let Some(wanted) = listing.status {
        all.retain(|m| status_of(m) == Some(wanted));
    }
    if listing.by_name {
        all.sort_by(|a, b| a.model_name.cmp(&b.model_name));
    } else {
        all.sort_by(|a, b| {
            (a.created_at.as_str(), a.model_name.as_str())
                .cmp(&(b.created_at.as_str(), b.model_name.as_str()))
        });
    }
    if !listing.ascending {
        all.reverse();
    }
    let total = all.len();
    let mut page = Vec::with_capacity(listing.limit.min(total));
    for m in all.into_iter().skip(listing.offset).take(listing.limit) {
        let vs = by_model
            .get(m.model_name.as_str())
            .cloned()
            .unwrap_or_default();
        let act: Vec<&ActiveDeployment> = active
            .iter()
            .filter(|a| a.model_name == m.model_name.as_str())
            .collect();
        page.push(
            ModelSummary::of(m, &vs, &act)
                .with_build_detail(blobs)
                .await?,
        );
    }
    Ok((page, total))
}

/// One model's summary (its newest version first checked for an abandoned build, since that
/// version's status is the model's).
pub async fn summary(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model_name: &ModelName,
) -> Result<ModelSummary, DomainError> {
    let (model, _) = super::require_model(store, account_id, model_name).await?;
    summary_of(store, blobs, account_id, model).await
}

/// The summary of a model already read.
pub async fn summary_of(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model: Model,
) -> Result<ModelSummary, DomainError> {
    let mut versions = super::list_versions(store, account_id, &model.model_name).await?;
    if let Some(latest) = versions.pop() {
        versions.push(jobs::fail_if_abandoned(store, account_id, latest).await?);
    }
    let active = deployments::active_deployments(store, account_id, &model.model_name).await?;
    let refs: Vec<&ModelVersion> = versions.iter().collect();
    let act: Vec<&ActiveDeployment> = active.iter().collect();
    ModelSummary::of(model, &refs, &act)
        .with_build_detail(blobs)
        .await
}
