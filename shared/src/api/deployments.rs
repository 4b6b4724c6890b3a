//! Deployments: `POST /models/{model_name}/deploy`, list, undeploy.

use super::PageInfo;
use crate::domain::deployments::{Deployment, DeploymentStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /models/{model_name}/deploy` (every field optional; an empty body deploys the newest
/// READY version to `production`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Default `production`.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub environment: Option<String>,
    #[serde(default, deserialize_with = "crate::api::whole_number::optional")]
    #[schema(minimum = 1, maximum = 100)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub auto_scale: Option<bool>,
    /// Default: the newest READY version.
    #[serde(default)]
    pub model_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentView {
    /// `dep_…`
    pub deployment_id: String,
    pub model_name: String,
    pub model_version: String,
    pub status: DeploymentStatus,
    /// Where predictions go.
    pub endpoint: String,
    pub environment: String,
    pub replicas: u32,
    pub auto_scale: bool,
    pub created_at: String,
    pub undeployed_at: Option<String>,
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        DeploymentView {
            deployment_id: d.deployment_id.clone(),
            model_name: d.model_name.to_string(),
            model_version: crate::domain::models::version_label(d.version_number),
            status: d.status,
            endpoint: d.endpoint(),
            environment: d.environment.to_string(),
            replicas: d.replicas,
            auto_scale: d.auto_scale,
            created_at: d.created_at.clone(),
            undeployed_at: d.undeployed_at.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<DeploymentView>,
    pub pagination: PageInfo,
}
