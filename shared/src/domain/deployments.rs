//! Deployments: which version of a model answers predictions, per environment. One active
//! deployment per environment, held by a pointer item that is swapped in the same transaction
//! as the new deployment is written and the old one marked UNDEPLOYED, so a redeploy never has
//! a moment with none (or two).
//!
//! Items: a [`Deployment`] per deployment and an [`ActiveDeployment`] pointer per environment
//! (keys: [`super::layout`]).

use super::layout::{
    EnvironmentName, ModelName, account_pk, active_deployment_prefix, active_deployment_sk,
    deployment_prefix, deployment_sk,
};
use super::models::{self, ModelVersion, VersionRef, VersionStatus, version_label};
use super::{DomainError, decode, encode};
use crate::ids::{new_id, now_rfc3339};
use crate::ports::{Condition, Item, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};

pub const DEFAULT_ENVIRONMENT: &str = "production";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeploymentStatus {
    Active,
    Undeployed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub deployment_id: String,
    pub model_name: ModelName,
    pub version_number: u32,
    pub status: DeploymentStatus,
    pub environment: EnvironmentName,
    pub replicas: u32,
    pub auto_scale: bool,
    pub created_at: String,
    #[serde(default)]
    pub undeployed_at: Option<String>,
}

impl Deployment {
    /// The path predictions for this deployment go to.
    pub fn endpoint(&self) -> String {
        format!(
            "/v1/models/{}/{}/infer",
            self.model_name,
            version_label(self.version_number)
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "deployment_id": self.deployment_id,
            "model_name": self.model_name,
            "model_version": version_label(self.version_number),
            "status": self.status,
            "endpoint": self.endpoint(),
            "environment": self.environment,
            "replicas": self.replicas,
            "auto_scale": self.auto_scale,
            "created_at": self.created_at,
            "undeployed_at": self.undeployed_at,
        })
    }
}

/// The pointer to an environment's active deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveDeployment {
    pub deployment_id: String,
    #[serde(default)]
    pub model_name: String,
    pub version_number: u32,
    pub environment: EnvironmentName,
}

pub struct DeployRequest {
    pub environment: Option<String>,
    pub replicas: Option<u32>,
    pub auto_scale: Option<bool>,
    pub model_version: Option<String>,
}

/// The active deployments of a model (one per environment).
pub async fn active_deployments(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
) -> Result<Vec<ActiveDeployment>, DomainError> {
    let pk = account_pk(account_id);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .query(
                &pk,
                &active_deployment_prefix(model_name),
                true,
                100,
                cursor.as_deref(),
            )
            .await?;
        for item in &page.items {
            out.push(decode(item)?);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// Whether version `number` of the model is deployed in some environment.
pub async fn is_deployed(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
    number: u32,
) -> Result<bool, DomainError> {
    Ok(active_deployments(store, account_id, model_name)
        .await?
        .iter()
        .any(|a| a.version_number == number))
}

/// Deploys a READY version (default: the newest READY one), replacing the environment's active
/// deployment in one transaction.
pub async fn deploy(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
    request: DeployRequest,
) -> Result<Deployment, DomainError> {
    models::require_model(store, account_id, model_name).await?;
    let environment = EnvironmentName::new(
        request
            .environment
            .as_deref()
            .unwrap_or(DEFAULT_ENVIRONMENT),
    )?;
    let replicas = request.replicas.unwrap_or(1);
    if !(1..=100).contains(&replicas) {
        return Err(DomainError::validation(
            "replicas must be between 1 and 100",
            "replicas",
        ));
    }
    let reference = match request.model_version.as_deref() {
        Some(v) => VersionRef::parse(v).map_err(|_| {
            DomainError::validation(
                format!("model_version {v:?} is not a version; use v2.0, v2, 2 or latest"),
                "model_version",
            )
        })?,
        None => VersionRef::Latest,
    };
    let version: ModelVersion =
        models::resolve_version(store, account_id, model_name, &reference).await?;
    if version.status != VersionStatus::Ready {
        return Err(DomainError::Conflict {
            message: format!(
                "Version {} of \"{model_name}\" is {}, not READY; only READY versions can be \
                 deployed. Poll GET /models/{model_name}/{}/status.",
                version.label(),
                version.status.as_str(),
                version.label()
            ),
        });
    }
    let pk = account_pk(account_id);
    let deployment = Deployment {
        deployment_id: new_id("dep"),
        model_name: model_name.clone(),
        version_number: version.number,
        status: DeploymentStatus::Active,
        environment: environment.clone(),
        replicas,
        auto_scale: request.auto_scale.unwrap_or(true),
        created_at: now_rfc3339(),
        undeployed_at: None,
    };
    let pointer = ActiveDeployment {
        deployment_id: deployment.deployment_id.clone(),
        model_name: model_name.to_string(),
        version_number: version.number,
        environment: environment.clone(),
    };
    for _ in 0..5 {
        let current = store
            .get(&pk, &active_deployment_sk(model_name, &environment))
            .await?;
        let mut ops = vec![WriteOp::Put {
            item: Item::new(
                pk.clone(),
                deployment_sk(model_name, &deployment.deployment_id),
                encode(&deployment)?,
            ),
            condition: Condition::Absent,
        }];
        let pointer_item = Item::new(
            pk.clone(),
            active_deployment_sk(model_name, &environment),
            encode(&pointer)?,
        );
        match &current {
            None => ops.push(WriteOp::Put {
                item: pointer_item,
                condition: Condition::Absent,
            }),
            Some(item) => {
                let old: ActiveDeployment = decode(item)?;
                ops.push(WriteOp::Put {
                    item: pointer_item,
                    condition: Condition::Revision(item.rev),
                });
                if let Some(old_item) = store
                    .get(&pk, &deployment_sk(model_name, &old.deployment_id))
                    .await?
                {
                    let mut old_dep: Deployment = decode(&old_item)?;
                    old_dep.status = DeploymentStatus::Undeployed;
                    old_dep.undeployed_at = Some(now_rfc3339());
                    ops.push(WriteOp::Put {
                        item: Item::new(pk.clone(), old_item.sk.clone(), encode(&old_dep)?),
                        condition: Condition::Revision(old_item.rev),
                    });
                }
            }
        }
        match store.transact(ops).await {
            Ok(()) => return Ok(deployment),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Conflict {
        message: "Another deployment of this model changed at the same time; retry.".into(),
    })
}

/// Every deployment of the model (active and past), newest first.
pub async fn list_deployments(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
) -> Result<Vec<Deployment>, DomainError> {
    models::require_model(store, account_id, model_name).await?;
    let mut deployments: Vec<Deployment> = models::query_all(
        store,
        &account_pk(account_id),
        &deployment_prefix(model_name),
        false,
    )
    .await?
    .iter()
    .map(decode)
    .collect::<Result<_, _>>()?;
    deployments.sort_by(|a, b| b.deployment_id.cmp(&a.deployment_id));
    Ok(deployments)
}

/// Undeploys: the deployment becomes UNDEPLOYED and, if it is its environment's active one, the
/// pointer goes, in one transaction. Undeploying twice returns the same record.
pub async fn undeploy(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
    deployment_id: &str,
) -> Result<Deployment, DomainError> {
    models::require_model(store, account_id, model_name).await?;
    let pk = account_pk(account_id);
    let not_found = || {
        DomainError::not_found(format!(
            "Model \"{model_name}\" has no deployment {deployment_id}. GET \
             /models/{model_name}/deployments lists them."
        ))
    };
    for _ in 0..5 {
        let item = store
            .get(&pk, &deployment_sk(model_name, deployment_id))
            .await?
            .ok_or_else(not_found)?;
        let mut deployment: Deployment = decode(&item)?;
        if deployment.status == DeploymentStatus::Undeployed {
            return Ok(deployment);
        }
        deployment.status = DeploymentStatus::Undeployed;
        deployment.undeployed_at = Some(now_rfc3339());
        let mut ops = vec![WriteOp::Put {
            item: Item::new(pk.clone(), item.sk.clone(), encode(&deployment)?),
            condition: Condition::Revision(item.rev),
        }];
        let pointer_sk = active_deployment_sk(model_name, &deployment.environment);
        if let Some(pointer) = store.get(&pk, &pointer_sk).await? {
            let active: ActiveDeployment = decode(&pointer)?;
            if active.deployment_id == deployment_id {
                ops.push(WriteOp::Delete {
                    pk: pk.clone(),
                    sk: pointer_sk,
                    condition: Condition::Revision(pointer.rev),
                });
            }
        }
        match store.transact(ops).await {
            Ok(()) => return Ok(deployment),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Conflict {
        message: "The deployment changed at the same time; retry.".into(),
    })
}

/// Deletes every deployment item of a model (used when the model is deleted).
pub async fn delete_all(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
) -> Result<(), DomainError> {
    let pk = account_pk(account_id);
    for prefix in [
        active_deployment_prefix(model_name),
        deployment_prefix(model_name),
    ] {
        for item in models::query_all(store, &pk, &prefix, true).await? {
            store.delete(&pk, &item.sk, Condition::None).await?;
        }
    }
    Ok(())
}
