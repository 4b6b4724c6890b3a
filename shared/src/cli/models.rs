//! `plexe models build|list|show|describe|logs|deploy|undeploy|download`.

use super::CliError;
use super::datasets::{print_more, upload};
use super::output::{
    Table, bytes_bar, cell, number, or_dash, percent_bar, print_fields, print_json,
};
use super::remote::RemoteArgs;
use crate::api::deployments::{DeployRequest, DeploymentView};
use crate::api::models::{CreateModelRequest, LogLineView, VersionStatusView};
use crate::client::models::ModelQuery;
use crate::client::{Client, Page};
use crate::domain::deployments::DeploymentStatus;
use crate::domain::models::VersionStatus;
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How often `--wait` asks for a build's status and new log lines.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Start a build from a dataset (or upload a file first); --wait follows it to the end.
    #[command(after_help = "Examples:\n  \
        plexe models build titanic --dataset ds_01J… --intent \"predict whether a passenger survived\" --wait\n  \
        plexe models build prices --file houses.csv --intent \"predict the sale price\" --metric mae")]
    Build {
        /// The model's name: lowercase letters, digits, `-` and `_`.
        model_name: String,
        /// The dataset to train on (`ds_…`).
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        dataset: Option<String>,
        /// A CSV or Parquet file to upload first and train on.
        #[arg(long)]
        file: Option<PathBuf>,
        /// What to predict, in plain words.
        #[arg(long)]
        intent: String,
        /// The column to predict, when the intent should not decide.
        #[arg(long)]
        target: Option<String>,
        /// accuracy, f1, precision, recall, roc_auc, log_loss; rmse, mae, r2.
        #[arg(long)]
        metric: Option<String>,
        /// Seconds the search may take (1–600, default 60).
        #[arg(long)]
        time_budget: Option<f64>,
        /// Candidate models to try at most.
        #[arg(long)]
        max_iterations: Option<u64>,
        #[arg(long)]
        description: Option<String>,
        /// Follow the build: a progress bar and its log lines until it is READY or ERROR
        /// (exit code 4 on ERROR).
        #[arg(long)]
        wait: bool,
    },
    /// List models.
    List {
        /// PENDING, BUILDING, READY or ERROR.
        #[arg(long)]
        status: Option<String>,
        /// created_at or name.
        #[arg(long)]
        sort_by: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// A model and its versions, or one version.
    Show {
        model_name: String,
        /// v2.0, v2, 2 or latest.
        version: Option<String>,
    },
    /// What a READY version is: summary, metrics, feature importance, leaderboard.
    Describe {
        model_name: String,
        #[arg(default_value = "latest")]
        version: String,
    },
    /// A version's build log.
    Logs {
        model_name: String,
        /// [default: the newest version]
        version: Option<String>,
    },
    /// Deploy a version (default: the newest READY one) to an environment.
    #[command(after_help = "Example:\n  plexe models deploy titanic --version v1")]
    Deploy {
        model_name: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long, default_value = "production")]
        environment: String,
    },
    /// Undeploy: the environment's active deployment, or one by id.
    Undeploy {
        model_name: String,
        #[arg(long, default_value = "production", conflicts_with = "deployment")]
        environment: String,
        /// A deployment id (`dep_…`).
        #[arg(long)]
        deployment: Option<String>,
    },
    /// Download a version's ONNX file.
    #[command(after_help = "Example:\n  plexe models download titanic v1 -o titanic.onnx")]
    Download {
        model_name: String,
        version: String,
        /// [default: MODEL-VERSION.onnx]
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub async fn run(remote: RemoteArgs, command: ModelsCommand) -> Result<(), CliError> {
    let client = remote.client()?;
    let json = remote.json;
    match command {
        ModelsCommand::Build {
            model_name,
            dataset,
            file,
            intent,
            target,
            metric,
            time_budget,
            max_iterations,
            description,
            wait,
        } => {
            // Checked before a --file is uploaded, so a bad name leaves no dataset behind.
            crate::domain::layout::ModelName::new(&model_name)
                .map_err(|e| CliError::Usage(e.public_reason()))?;
            let dataset_id = match (dataset, file) {
                (Some(id), _) => id,
                (None, Some(file)) => {
                    let dataset = upload(&client, &file, None, None).await?;
                    if !json {
                        eprintln!(
                            "Uploaded {} as dataset {} ({} rows).",
                            file.display(),
                            dataset.dataset_id,
                            dataset.row_count
                        );
                    }
                    dataset.dataset_id
                }
                (None, None) => {
                    return Err(CliError::Usage("give --dataset ID or --file FILE".into()));
                }
            };
            let request = CreateModelRequest {
                intent,
                dataset_id: Some(dataset_id),
                description,
                metric,
                target,
                time_budget_s: time_budget,
                max_iterations,
                ..CreateModelRequest::default()
            };
            let accepted = client.create_model(&model_name, &request).await?;
            if !wait {
                if json {
                    return print_json(&accepted);
                }
                println!(
                    "Build started: {} {} (job {}). Follow it with `plexe models show {} {}`.",
                    accepted.model_name,
                    accepted.model_version,
                    accepted.job_id,
                    accepted.model_name,
                    accepted.model_version
                );
                return Ok(());
            }
            if !json {
                eprintln!(
                    "Build started: {} {} (job {}).",
                    accepted.model_name, accepted.model_version, accepted.job_id
                );
            }
            let status = wait_for_build(
                &client,
                &accepted.model_name,
                &accepted.model_version,
                &accepted.job_id,
            )
            .await?;
            if json {
                print_json(&status)?;
            } else {
                print_status(&status);
            }
            if let Some(error) = status
                .error
                .filter(|_| status.status == VersionStatus::Error)
            {
                return Err(CliError::BuildFailed(format!(
                    "{} {} failed: {} ({})",
                    status.model_name, status.model_version, error.message, error.code
                )));
            }
            Ok(())
        }
        ModelsCommand::List {
            status,
            sort_by,
            limit,
            offset,
        } => {
            let list = client
                .list_models(&ModelQuery {
                    status,
                    sort_by,
                    sort_dir: None,
                    page: Page { limit, offset },
                })
                .await?;
            if json {
                return print_json(&list);
            }
            let mut table = Table::new(&[
                "MODEL", "STATUS", "LATEST", "READY", "DEPLOYED", "METRICS", "CREATED",
            ]);
            for m in &list.models {
                table.row(vec![
                    m.model_name.clone(),
                    or_dash(m.status.map(VersionStatus::as_str)),
                    or_dash(m.latest_version.as_deref()),
                    or_dash(m.ready_version.as_deref()),
                    if m.deployment_status.is_some() {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                    metrics_text(&m.metrics, 3),
                    m.created_at.clone(),
                ]);
            }
            table.print();
            print_more(
                list.pagination.total,
                list.models.len(),
                list.pagination.offset,
            );
            Ok(())
        }
        ModelsCommand::Show {
            model_name,
            version: Some(version),
        } => {
            let v = client.get_version(&model_name, &version).await?;
            if json {
                return print_json(&v);
            }
            print_fields(&[
                ("model", v.model_name.clone()),
                ("version", v.model_version.clone()),
                ("status", v.status.as_str().to_string()),
                ("build_progress", format!("{}%", v.build_progress)),
                ("job_id", v.job_id.clone()),
                ("dataset_id", v.dataset_id.clone()),
                ("intent", v.intent.clone()),
                ("target", or_dash(v.target.as_deref())),
                ("task", or_dash(v.task.as_deref())),
                ("algorithm", or_dash(v.algorithm.as_deref())),
                ("metrics", metrics_line(&v.metrics)),
                (
                    "error",
                    v.error
                        .as_ref()
                        .map_or("-".into(), |e| format!("{} ({})", e.message, e.code)),
                ),
                ("endpoint", or_dash(v.endpoint.as_deref())),
                ("created_at", v.created_at.clone()),
            ]);
            Ok(())
        }
        ModelsCommand::Show {
            model_name,
            version: None,
        } => {
            let model = client.get_model(&model_name).await?;
            let versions = client
                .list_versions(
                    &model_name,
                    Page {
                        limit: Some(100),
                        offset: None,
                    },
                )
                .await?;
            if json {
                return print_json(&serde_json::json!({
                    "model": model,
                    "versions": versions.versions,
                }));
            }
            print_fields(&[
                ("model", model.model_name.clone()),
                ("name", model.name.clone()),
                ("intent", model.intent.clone()),
                ("status", or_dash(model.status.map(VersionStatus::as_str))),
                ("ready_version", or_dash(model.ready_version.as_deref())),
                ("endpoint", or_dash(model.endpoint.as_deref())),
                ("metrics", metrics_line(&model.metrics)),
                ("dataset_id", model.dataset_id.clone()),
                ("created_at", model.created_at.clone()),
            ]);
            println!();
            let mut table = Table::new(&[
                "VERSION",
                "STATUS",
                "PROGRESS",
                "ALGORITHM",
                "RESULT",
                "DEPLOYED",
                "CREATED",
            ]);
            for v in &versions.versions {
                table.row(vec![
                    v.model_version.clone(),
                    v.status.as_str().to_string(),
                    format!("{}%", v.build_progress),
                    or_dash(v.algorithm.as_deref()),
                    v.result.as_ref().map_or("-".into(), |r| {
                        format!("{} {}", r.metric_name, number(r.metric_value))
                    }),
                    if v.deployment_status.is_some() {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                    v.created_at.clone(),
                ]);
            }
            table.print();
            Ok(())
        }
        ModelsCommand::Describe {
            model_name,
            version,
        } => {
            let d = client.describe(&model_name, &version).await?;
            if json {
                return print_json(&d);
            }
            println!(
                "{} {}: {}",
                d.model_name,
                d.model_version,
                super::output::printable(&d.description)
            );
            println!();
            print_fields(&[
                ("target", d.target.clone()),
                ("task", d.task.clone()),
                ("algorithm", d.training_info.algorithm.clone()),
                (
                    "dataset",
                    format!(
                        "{} ({} rows)",
                        d.training_info.dataset_id, d.training_info.dataset_size
                    ),
                ),
                ("positive_class", or_dash(d.positive_class.as_deref())),
                ("metrics", metrics_line(&d.performance_metrics)),
                (
                    "artifact",
                    format!("{} ({} bytes)", d.artifact.download, d.artifact.size_bytes),
                ),
            ]);
            // `[{feature, importance}]`, largest first (an object of feature → share also reads).
            let mut ranked: Vec<(String, f64)> = match &d.training_info.feature_importance {
                Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        (
                            i.get("feature").map_or_else(|| i.to_string(), cell),
                            i.get("importance").and_then(Value::as_f64).unwrap_or(0.0),
                        )
                    })
                    .collect(),
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
                    .collect(),
                _ => Vec::new(),
            };
            if !ranked.is_empty() {
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                println!();
                let mut table = Table::new(&["FEATURE", "IMPORTANCE"]);
                for (name, share) in ranked.iter().take(10) {
                    table.row(vec![name.clone(), number(*share)]);
                }
                table.print();
            }
            if let Some(board) = d.training_info.leaderboard.as_array() {
                println!();
                let mut table = Table::new(&["FAMILY", "PARAMETERS", "VALIDATION_SCORE"]);
                for entry in board.iter().take(10) {
                    let field = |name: &str| entry.get(name).map_or("-".into(), cell);
                    table.row(vec![
                        field("family"),
                        shortened(&field("parameters"), 60),
                        field("validation_score"),
                    ]);
                }
                table.print();
            }
            Ok(())
        }
        ModelsCommand::Logs {
            model_name,
            version,
        } => {
            let version = match version {
                Some(v) => v,
                None => client
                    .get_model(&model_name)
                    .await?
                    .latest_version
                    .ok_or_else(|| CliError::Usage(format!("{model_name} has no version")))?,
            };
            let v = client.get_version(&model_name, &version).await?;
            let lines = all_log_lines(&client, &v.job_id).await?;
            if json {
                return print_json(&lines);
            }
            for line in &lines {
                println!("{}", log_text(line));
            }
            Ok(())
        }
        ModelsCommand::Deploy {
            model_name,
            version,
            environment,
        } => {
            let deployment = client
                .deploy(
                    &model_name,
                    &DeployRequest {
                        environment: Some(environment),
                        model_version: version,
                        ..DeployRequest::default()
                    },
                )
                .await?;
            if json {
                return print_json(&deployment);
            }
            println!(
                "Deployed {} {} to {}.",
                deployment.model_name, deployment.model_version, deployment.environment
            );
            print_deployment(&deployment);
            Ok(())
        }
        ModelsCommand::Undeploy {
            model_name,
            environment,
            deployment,
        } => {
            let deployment_id = match deployment {
                Some(id) => id,
                None => active_deployment(&client, &model_name, &environment).await?,
            };
            let deployment = client.undeploy(&model_name, &deployment_id).await?;
            if json {
                return print_json(&deployment);
            }
            println!(
                "Undeployed {} {} from {}.",
                deployment.model_name, deployment.model_version, deployment.environment
            );
            print_deployment(&deployment);
            Ok(())
        }
        ModelsCommand::Download {
            model_name,
            version,
            output,
        } => {
            let output =
                output.unwrap_or_else(|| PathBuf::from(format!("{model_name}-{version}.onnx")));
            let bar = bytes_bar(&format!("downloading {model_name} {version}"));
            let result = client
                .download_artifact(&model_name, &version, &output, &bar)
                .await;
            bar.finish_and_clear();
            let bytes = result?;
            if json {
                return print_json(&serde_json::json!({
                    "model_name": model_name,
                    "model_version": version,
                    "path": output.display().to_string(),
                    "size_bytes": bytes,
                }));
            }
            println!("Wrote {} ({bytes} bytes).", output.display());
            Ok(())
        }
    }
}

/// The id of the model's active deployment in `environment`.
async fn active_deployment(
    client: &Client,
    model_name: &str,
    environment: &str,
) -> Result<String, CliError> {
    let list = client
        .list_deployments(
            model_name,
            Page {
                limit: Some(100),
                offset: None,
            },
        )
        .await?;
    list.deployments
        .into_iter()
        .find(|d| d.environment == environment && d.status == DeploymentStatus::Active)
        .map(|d| d.deployment_id)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{model_name} has no active deployment in {environment:?}"
            ))
        })
}

/// Polls the version until it is READY or ERROR: the bar follows `build_progress`, and each
/// new log line is printed above it (on stderr) as it comes.
pub async fn wait_for_build(
    client: &Client,
    model_name: &str,
    version: &str,
    job_id: &str,
) -> Result<VersionStatusView, CliError> {
    let bar = percent_bar(&format!("building {model_name} {version}"));
    let mut seen = 0u32;
    let result = loop {
        let status = match client.version_status(model_name, version).await {
            Ok(s) => s,
            Err(e) => break Err(e.into()),
        };
        bar.set_position(u64::from(status.build_progress));
        // Every line written so far, also those of the last moment of a finished build.
        loop {
            let page = client
                .build_logs(
                    job_id,
                    Page {
                        limit: Some(100),
                        offset: Some(seen),
                    },
                )
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => return Err(e.into()),
            };
            for line in &page.logs {
                bar.suspend(|| eprintln!("{}", log_text(line)));
            }
            seen += page.logs.len() as u32;
            if !page.pagination.has_more || page.logs.is_empty() {
                break;
            }
        }
        if matches!(status.status, VersionStatus::Ready | VersionStatus::Error) {
            break Ok(status);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    bar.finish_and_clear();
    result
}

async fn all_log_lines(client: &Client, job_id: &str) -> Result<Vec<LogLineView>, CliError> {
    let mut lines = Vec::new();
    loop {
        let page = client
            .build_logs(
                job_id,
                Page {
                    limit: Some(100),
                    offset: Some(lines.len() as u32),
                },
            )
            .await?;
        let done = !page.pagination.has_more || page.logs.is_empty();
        lines.extend(page.logs);
        if done {
            return Ok(lines);
        }
    }
}

fn log_text(line: &LogLineView) -> String {
    format!(
        "{} {:5} {}",
        line.timestamp,
        line.level,
        super::output::printable(&line.message)
    )
}

fn print_status(status: &VersionStatusView) {
    let mut fields = vec![
        ("model", status.model_name.clone()),
        ("version", status.model_version.clone()),
        ("status", status.status.as_str().to_string()),
        ("build_progress", format!("{}%", status.build_progress)),
    ];
    if let Some(result) = &status.result {
        fields.push((
            "result",
            format!("{} {}", result.metric_name, number(result.metric_value)),
        ));
    }
    if let Some(error) = &status.error {
        fields.push(("error", format!("{} ({})", error.message, error.code)));
    }
    print_fields(&fields);
}

fn print_deployment(d: &DeploymentView) {
    print_fields(&[
        ("deployment_id", d.deployment_id.clone()),
        ("status", format!("{:?}", d.status).to_uppercase()),
        ("endpoint", d.endpoint.clone()),
        ("created_at", d.created_at.clone()),
    ]);
}

/// At most `max` characters, `…` marking a cut.
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `{"accuracy": 0.81, …}` as `accuracy 0.81, …` (the first three in a list).
fn metrics_line(metrics: &Value) -> String {
    metrics_text(metrics, usize::MAX)
}

fn metrics_text(metrics: &Value, max: usize) -> String {
    match metrics.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .take(max)
            .map(|(k, v)| format!("{k} {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}
