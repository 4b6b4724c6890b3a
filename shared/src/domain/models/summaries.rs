//! What a model's listing shows, joined here once for `GET /models` and `GET /models/{name}`:
//! the model, its newest version (whose status is the model's), its newest READY version
//! (metrics, schemas) and the deployment that serves it (`production`, else any active one).

use super::{Model, ModelVersion, VersionStatus, jobs};
use crate::domain::deployments::{self, ActiveDeployment, DEFAULT_ENVIRONMENT};
use crate::domain::layout::{ACTIVE_DEPLOYMENT_PREFIX, ModelName, account_pk};
use crate::domain::{CONCURRENT_READS, DomainError};
use crate::ports::{Blobs, Store};
use futures::StreamExt;

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
}

/// The deployment that serves a model: its `production` one, else any active one.
fn serving(active: &[&ActiveDeployment]) -> Option<ActiveDeployment> {
    active
        .iter()
        .find(|a| a.environment.as_str() == DEFAULT_ENVIRONMENT)
        .or_else(|| active.first())
        .map(|a| (*a).clone())
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

/// One page of the account's models and how many match in all. Reads the model items, the
/// active-deployment pointers, and per model only what it shows: its newest version (one item)
/// and its newest READY one — for the page's models, or for every model when filtering by
/// status — never every version of every model.
pub async fn list_summaries(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    listing: ModelListing,
) -> Result<(Vec<ModelSummary>, usize), DomainError> {
    let mut all = super::list_models(store, account_id).await?;
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
    let newest = |models: Vec<Model>| {
        futures::stream::iter(models.into_iter().map(|m| async move {
            let latest = super::newest_version(store, account_id, &m.model_name).await?;
            Ok::<_, DomainError>((m, latest))
        }))
        .buffered(CONCURRENT_READS)
        .collect::<Vec<_>>()
    };
    let (page, total): (Vec<(Model, Option<ModelVersion>)>, usize) = match listing.status {
        Some(wanted) => {
            let matching: Vec<_> = newest(all)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|(_, latest)| latest.as_ref().map(|v| v.status) == Some(wanted))
                .collect();
            let total = matching.len();
            let page = matching
                .into_iter()
                .skip(listing.offset)
                .take(listing.limit)
                .collect();
            (page, total)
        }
        None => {
            let total = all.len();
            let models: Vec<Model> = all
                .into_iter()
                .skip(listing.offset)
                .take(listing.limit)
                .collect();
            let page = newest(models)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            (page, total)
        }
    };
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
    let mut summaries = Vec::with_capacity(page.len());
    for (model, latest) in page {
        let act: Vec<&ActiveDeployment> = active
            .iter()
            .filter(|a| a.model_name == model.model_name.as_str())
            .collect();
        summaries.push(summarize(store, blobs, account_id, model, latest, &act).await?);
    }
    Ok((summaries, total))
}

/// The summary of a model whose newest version is `latest`.
async fn summarize(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model: Model,
    latest: Option<ModelVersion>,
    active: &[&ActiveDeployment],
) -> Result<ModelSummary, DomainError> {
    let ready = match &latest {
        Some(v) if v.status == VersionStatus::Ready => Some(v.clone()),
        Some(_) => super::newest_ready_version(store, account_id, &model.model_name).await?,
        None => None,
    };
    ModelSummary {
        model,
        latest,
        ready,
        serving: serving(active),
    }
    .with_build_detail(blobs)
    .await
}

/// One model's summary (its newest version first checked for an abandoned build, since that
/// version's status is the model's). The model, its newest version and its active deployments
/// are read at once: three reads, one round trip.
pub async fn summary(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model_name: &ModelName,
) -> Result<ModelSummary, DomainError> {
    let ((model, _), (latest, active)) = futures::try_join!(
        super::require_model(store, account_id, model_name),
        latest_and_active(store, account_id, model_name),
    )?;
    summary_from(store, blobs, account_id, model, latest, active).await
}

/// The summary of a model already read.
pub async fn summary_of(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model: Model,
) -> Result<ModelSummary, DomainError> {
    let (latest, active) = latest_and_active(store, account_id, &model.model_name).await?;
    summary_from(store, blobs, account_id, model, latest, active).await
}

/// A model's newest version and its active deployments, read concurrently.
async fn latest_and_active(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
) -> Result<(Option<ModelVersion>, Vec<ActiveDeployment>), DomainError> {
    futures::try_join!(
        super::newest_version(store, account_id, model_name),
        deployments::active_deployments(store, account_id, model_name),
    )
}

/// The summary from what [`latest_and_active`] read; an abandoned newest build is failed first
/// (only once the model is known to exist).
async fn summary_from(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model: Model,
    latest: Option<ModelVersion>,
    active: Vec<ActiveDeployment>,
) -> Result<ModelSummary, DomainError> {
    let latest = match latest {
        Some(latest) => Some(jobs::fail_if_abandoned(store, account_id, latest).await?),
        None => None,
    };
    let act: Vec<&ActiveDeployment> = active.iter().collect();
    summarize(store, blobs, account_id, model, latest, &act).await
}
