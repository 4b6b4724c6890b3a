//! `plexe datasets upload|list|show|preview`.

use super::CliError;
use super::output::{Table, bytes_bar, cell, number, print_fields, print_json};
use super::remote::RemoteArgs;
use crate::api::datasets::DatasetView;
use crate::client::{Client, Page};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Upload a CSV or Parquet file (up to 500 MB) through an upload session, with a
    /// progress bar; the server checks its size and SHA-256.
    #[command(after_help = "Examples:\n  plexe datasets upload titanic.csv\n  \
                            plexe datasets upload sales.parquet --name sales-2026")]
    Upload {
        file: PathBuf,
        /// The dataset's name [default: the file's name without its extension].
        #[arg(long)]
        name: Option<String>,
        /// csv or parquet [default: from the extension or the file's first bytes].
        #[arg(long, value_parser = ["csv", "parquet"])]
        format: Option<String>,
    },
    /// List datasets, newest first.
    List {
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        offset: Option<u32>,
    },
    /// A dataset and its column profile.
    Show { dataset_id: String },
    /// The first rows of a dataset.
    Preview {
        dataset_id: String,
        /// Rows, 1 to 100.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

/// The file's name without its extension, as the dataset's default name.
pub fn default_name(file: &Path) -> String {
    file.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("dataset")
        .to_string()
}

/// Uploads `file` through an upload session with a bytes/s bar on stderr.
pub async fn upload(
    client: &Client,
    file: &Path,
    name: Option<String>,
    format: Option<&str>,
) -> Result<DatasetView, CliError> {
    let name = name.unwrap_or_else(|| default_name(file));
    let bar = bytes_bar(&format!("uploading {}", file.display()));
    let result = client
        .upload_dataset(file, &name, format, Arc::new(bar.clone()))
        .await;
    bar.finish_and_clear();
    Ok(result?)
}

pub async fn run(remote: RemoteArgs, command: DatasetsCommand) -> Result<(), CliError> {
    let client = remote.client()?;
    match command {
        DatasetsCommand::Upload { file, name, format } => {
            let dataset = upload(&client, &file, name, format.as_deref()).await?;
            if remote.json {
                return print_json(&dataset);
            }
            println!(
                "Uploaded {} as dataset {} ({} rows, {} columns).",
                file.display(),
                dataset.dataset_id,
                dataset.row_count,
                dataset.columns.len()
            );
            print_profile(&dataset);
        }
        DatasetsCommand::List { limit, offset } => {
            let list = client.list_datasets(Page { limit, offset }).await?;
            if remote.json {
                return print_json(&list);
            }
            let mut table =
                Table::new(&["DATASET_ID", "NAME", "FORMAT", "ROWS", "COLUMNS", "CREATED"]);
            for d in &list.datasets {
                table.row(vec![
                    d.dataset_id.clone(),
                    d.name.clone(),
                    d.format.clone(),
                    d.row_count.to_string(),
                    d.columns.len().to_string(),
                    d.created_at.clone(),
                ]);
            }
            table.print();
            print_more(
                list.pagination.total,
                list.datasets.len(),
                list.pagination.offset,
            );
        }
        DatasetsCommand::Show { dataset_id } => {
            let dataset = client.get_dataset(&dataset_id).await?;
            if remote.json {
                return print_json(&dataset);
            }
            print_fields(&[
                ("dataset_id", dataset.dataset_id.clone()),
                ("name", dataset.name.clone()),
                ("format", dataset.format.clone()),
                ("size_bytes", dataset.size_bytes.to_string()),
                ("sha256", dataset.sha256.clone()),
                ("rows", dataset.row_count.to_string()),
                ("created_at", dataset.created_at.clone()),
            ]);
            println!();
            print_profile(&dataset);
        }
        DatasetsCommand::Preview { dataset_id, limit } => {
            let preview = client.preview_dataset(&dataset_id, Some(limit)).await?;
            if remote.json {
                return print_json(&preview);
            }
            let header: Vec<&str> = preview.columns.iter().map(String::as_str).collect();
            let mut table = Table::new(&header);
            for row in &preview.rows {
                table.row(
                    preview
                        .columns
                        .iter()
                        .map(|c| cell(row.get(c).unwrap_or(&serde_json::Value::Null)))
                        .collect(),
                );
            }
            table.print();
            println!("({} of {} rows)", preview.rows.len(), preview.row_count);
        }
    }
    Ok(())
}

/// One line per column: type, missing, unique, range or top values.
fn print_profile(dataset: &DatasetView) {
    let mut table = Table::new(&["COLUMN", "TYPE", "MISSING", "UNIQUE", "SUMMARY"]);
    for c in &dataset.columns {
        let summary = match (&c.top_values, c.mean) {
            (Some(top), _) => top
                .iter()
                .take(3)
                .map(|v| format!("{} ({})", cell(&v.value), v.count))
                .collect::<Vec<_>>()
                .join(", "),
            (None, Some(mean)) => format!(
                "min {}, max {}, mean {}",
                cell(&c.min),
                cell(&c.max),
                number(mean)
            ),
            (None, None) if !c.min.is_null() => format!("{} to {}", cell(&c.min), cell(&c.max)),
            _ => String::new(),
        };
        table.row(vec![
            c.name.clone(),
            c.kind.clone(),
            c.missing.to_string(),
            c.unique.to_string(),
            summary,
        ]);
    }
    table.print();
}

/// A hint when a list has more than this page.
pub fn print_more(total: u64, shown: usize, offset: u64) {
    let end = offset + shown as u64;
    if end < total {
        println!("({shown} of {total}; next page: --offset {end})");
    }
}
