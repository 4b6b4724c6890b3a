//! `/datasets`: direct uploads, upload sessions, listing, preview, delete.

use super::{AnyJson, PageInfo};
use crate::domain::datasets::{Dataset, Preview};
use crate::domain::uploads::{self, CreatedUpload, UploadSession, UploadStatus};
use crate::ingest::ColumnProfile;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A dataset and its profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    /// `ds_…`
    pub dataset_id: String,
    pub name: String,
    /// `csv` or `parquet`.
    pub format: String,
    pub size_bytes: u64,
    /// Of the file as uploaded (lowercase hex).
    pub sha256: String,
    pub row_count: u64,
    /// One per column, in file order.
    pub columns: Vec<ColumnView>,
    pub created_at: String,
}

/// A column's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ColumnView {
    pub name: String,
    /// `integer`, `float`, `boolean`, `string` or `datetime`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Missing cells.
    pub missing: u64,
    /// Distinct values among the others.
    pub unique: u64,
    /// Smallest value (numbers and datetimes).
    #[serde(default, skip_serializing_if = "AnyJson::is_null")]
    pub min: AnyJson,
    #[serde(default, skip_serializing_if = "AnyJson::is_null")]
    pub max: AnyJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// The most frequent values with their counts (strings and booleans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_values: Option<Vec<ValueCountView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValueCountView {
    pub value: AnyJson,
    pub count: u64,
}

fn json_of<T: Serialize>(value: &T) -> AnyJson {
    serde_json::to_value(value).unwrap_or(AnyJson::Null)
}

impl From<&ColumnProfile> for ColumnView {
    fn from(c: &ColumnProfile) -> Self {
        ColumnView {
            name: c.name.clone(),
            kind: json_of(&c.kind).as_str().unwrap_or_default().to_string(),
            missing: c.missing as u64,
            unique: c.unique as u64,
            min: c.min.as_ref().map_or(AnyJson::Null, json_of),
            max: c.max.as_ref().map_or(AnyJson::Null, json_of),
            mean: c.mean,
            top_values: c.top_values.as_ref().map(|values| {
                values
                    .iter()
                    .map(|v| ValueCountView {
                        value: json_of(&v.value),
                        count: v.count as u64,
                    })
                    .collect()
            }),
        }
    }
}

impl From<&Dataset> for DatasetView {
    fn from(d: &Dataset) -> Self {
        DatasetView {
            dataset_id: d.dataset_id.clone(),
            name: d.name.clone(),
            format: d.format.as_str().to_string(),
            size_bytes: d.size_bytes,
            sha256: d.sha256.clone(),
            row_count: d.row_count as u64,
            columns: d.columns.iter().map(ColumnView::from).collect(),
            created_at: d.created_at.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetList {
    pub datasets: Vec<DatasetView>,
    pub pagination: PageInfo,
}

/// The first rows of a dataset, as JSON objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetPreview {
    pub dataset_id: String,
    /// Column names in file order.
    pub columns: Vec<String>,
    pub row_count: u64,
    pub limit: u64,
    /// One object per row: column name → value (`null` for a missing cell).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<AnyJson>,
}

impl From<Preview> for DatasetPreview {
    fn from(p: Preview) -> Self {
        DatasetPreview {
            dataset_id: p.dataset_id,
            columns: p.columns,
            row_count: p.row_count as u64,
            limit: p.limit as u64,
            rows: p.rows,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeletedDataset {
    pub dataset_id: String,
    pub deleted: bool,
}

/// `POST /datasets/uploads`: a session for a file of up to 500 MB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUploadRequest {
    /// The dataset's name (1 to 200 characters, spaces around it trimmed, no control
    /// characters).
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,198}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    #[schema(value_type = FileFormat)]
    pub format: String,
    /// When given, completing checks the file has exactly this size.
    #[serde(default, deserialize_with = "crate::api::whole_number::optional")]
    #[schema(minimum = 1, maximum = 524288000)]
    pub size_bytes: Option<u64>,
    /// When given (64 hex characters), completing checks the file's SHA-256.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: Option<String>,
}

/// The format of a dataset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Parquet,
}

/// Where to `PUT` the file, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadSessionView {
    /// `upl_…`
    pub upload_id: String,
    /// Send the file with one `PUT` to this URL (no API key: the URL is signed).
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// When the URL stops taking the file (RFC 3339).
    pub expires_at: String,
    pub name: String,
    pub format: String,
    pub max_size_bytes: u64,
}

/// Where an upload session stands (`GET /datasets/uploads/{upload_id}`, and the 202 of a
/// completion that runs in the background).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadStatusView {
    /// `upl_…`
    pub upload_id: String,
    pub name: String,
    pub format: String,
    /// `pending` (waiting for the file or for `complete`), `queued` and `completing` (being
    /// completed: poll again), `completed` (see `dataset_id`), `failed` (see `error`; upload
    /// the file again and complete again).
    pub status: String,
    /// The dataset the session created, once `completed`.
    pub dataset_id: Option<String>,
    /// Why the last completion failed, when `failed`.
    pub error: Option<String>,
}

impl From<&UploadSession> for UploadStatusView {
    fn from(s: &UploadSession) -> Self {
        let lapsed = uploads::claim_lapsed(s);
        let status = match (s.status, &s.failure) {
            _ if lapsed => "failed",
            (UploadStatus::Pending, Some(_)) => "failed",
            (UploadStatus::Pending, None) => "pending",
            (UploadStatus::Queued, _) => "queued",
            (UploadStatus::Completing, _) => "completing",
            (UploadStatus::Completed, _) => "completed",
        };
        let error = if lapsed {
            Some("the completion stopped before it finished; complete the session again".into())
        } else {
            s.failure.clone()
        };
        UploadStatusView {
            upload_id: s.upload_id.clone(),
            name: s.name.clone(),
            format: s.format.as_str().to_string(),
            status: status.into(),
            dataset_id: s.dataset_id.clone(),
            error,
        }
    }
}

impl From<&CreatedUpload> for UploadSessionView {
    fn from(c: &CreatedUpload) -> Self {
        UploadSessionView {
            upload_id: c.session.upload_id.clone(),
            upload_url: c.upload_url.clone(),
            method: "PUT".into(),
            expires_at: c.session.url_expires_at.clone(),
            name: c.session.name.clone(),
            format: c.session.format.as_str().to_string(),
            max_size_bytes: crate::domain::uploads::MAX_UPLOAD_BYTES,
        }
    }
}

/// The file of an upload session arrived (`PUT` to its URL); complete the session next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadReceived {
    pub size_bytes: u64,
}
