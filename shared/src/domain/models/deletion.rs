//! Deleting a model: its builds in flight are cancelled (their jobs deleted, so a worker's next
//! heartbeat or final write fails and it discards its result), then deployments, artifacts,
//! build logs and versions go, and the model item last, so the name stays taken until
//! everything under it is gone.

use super::jobs;
use super::{ModelVersion, logs, require_model};
use crate::domain::layout::{ModelName, account_pk, build_slot_sk, job_sk, model_sk, version_sk};
use crate::domain::{DomainError, deployments};
use crate::ports::{Blobs, Condition, Store, StoreError, WriteOp};

pub async fn delete_model(
    store: &dyn Store,
    blobs: &dyn Blobs,
    account_id: &str,
    model_name: &ModelName,
) -> Result<(), DomainError> {
    require_model(store, account_id, model_name).await?;
    let pk = account_pk(account_id);
    let versions: Vec<ModelVersion> = super::list_versions(store, account_id, model_name).await?;
    for version in &versions {
        cancel_job(store, account_id, &version.job_id).await?;
        logs::delete_job_logs(store, account_id, &version.job_id).await?;
    }
    deployments::delete_all(store, account_id, model_name).await?;
    for version in &versions {
        if let Some(trained) = &version.trained {
            for key in trained.blob_keys() {
                blobs.delete(key).await?;
            }
        }
        store
            .delete(
                &pk,
                &version_sk(model_name, version.number),
                Condition::None,
            )
            .await?;
    }
    store
        .delete(&pk, &model_sk(model_name), Condition::None)
        .await?;
    tracing::info!(%model_name, versions = versions.len(), "model deleted");
    Ok(())
}

/// Deletes the job; a job still in flight also gives back its build slot, in the same
/// transaction (conditional on the job not changing meanwhile).
async fn cancel_job(store: &dyn Store, account_id: &str, job_id: &str) -> Result<(), DomainError> {
    let pk = account_pk(account_id);
    for _ in 0..10 {
        let Some((job, rev)) = jobs::get_job(store, account_id, job_id).await? else {
            return Ok(());
        };
        let mut ops = vec![WriteOp::Delete {
            pk: pk.clone(),
            sk: job_sk(job_id),
            condition: Condition::Revision(rev),
        }];
        if !job.state.is_terminal() {
            ops.push(WriteOp::Delete {
                pk: pk.clone(),
                sk: build_slot_sk(job.slot),
                condition: Condition::None,
            });
            tracing::info!(job_id, state = ?job.state, "cancelling a build in flight");
        }
        match store.transact(ops).await {
            Ok(()) => return Ok(()),
            // A worker renewed its lease or finished in between: look again.
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Conflict {
        message: "A build of this model kept changing while it was being cancelled; retry.".into(),
    })
}
