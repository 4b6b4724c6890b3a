//! Which reader an upload needs: from an explicit `?format=`, the content type, the file name's
//! extension, or Parquet's `PAR1` magic bytes, in that order. Anything else is
//! [`IngestError::UnsupportedFormat`] (HTTP 415).

use super::error::IngestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Csv,
    Parquet,
}

impl DataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Csv => "csv",
            DataFormat::Parquet => "parquet",
        }
    }
}

/// What is known about an upload besides its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatHints<'a> {
    /// `?format=csv|parquet` or the `format` field of an upload request.
    pub explicit: Option<&'a str>,
    /// The `Content-Type` header (parameters such as `; charset=utf-8` are ignored).
    pub content_type: Option<&'a str>,
    /// A multipart part's file name.
    pub file_name: Option<&'a str>,
}

pub fn detect_format(hints: FormatHints<'_>, head: &[u8]) -> Result<DataFormat, IngestError> {
    if let Some(explicit) = hints.explicit {
        return match explicit.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(DataFormat::Csv),
            "parquet" => Ok(DataFormat::Parquet),
            other => Err(IngestError::UnsupportedFormat {
                reason: format!("format {other:?} is not supported"),
            }),
        };
    }
    let content_type = hints
        .content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty());
    match content_type.as_deref() {
        Some("text/csv" | "application/csv" | "text/comma-separated-values") => {
            return Ok(DataFormat::Csv);
        }
        Some("application/vnd.apache.parquet" | "application/x-parquet") => {
            return Ok(DataFormat::Parquet);
        }
        // Says nothing about the format: look further.
        None | Some("application/octet-stream" | "multipart/form-data") => {}
        Some(other) => {
            return Err(IngestError::UnsupportedFormat {
                reason: format!("content type {other:?} is not CSV or Parquet"),
            });
        }
    }
    let extension = hints
        .file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("csv") => return Ok(DataFormat::Csv),
        Some("parquet" | "pq") => return Ok(DataFormat::Parquet),
        _ => {}
    }
    if head.starts_with(b"PAR1") {
        return Ok(DataFormat::Parquet);
    }
    Err(IngestError::UnsupportedFormat {
        reason: "the upload's format could not be told from its type or contents".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(
        explicit: Option<&str>,
        content_type: Option<&str>,
        file_name: Option<&str>,
        head: &[u8],
    ) -> Option<DataFormat> {
        detect_format(
            FormatHints {
                explicit,
                content_type,
                file_name,
            },
            head,
        )
        .ok()
    }

    #[test]
    fn explicit_then_content_type_then_name_then_magic() {
        use DataFormat::*;
        assert_eq!(
            detect(Some("Parquet"), Some("text/csv"), None, b"a,b"),
            Some(Parquet)
        );
        assert_eq!(
            detect(None, Some("text/csv; charset=utf-8"), None, b"PAR1"),
            Some(Csv)
        );
        assert_eq!(
            detect(None, Some("application/x-parquet"), None, b""),
            Some(Parquet)
        );
        assert_eq!(
            detect(None, Some("application/octet-stream"), Some("d.CSV"), b""),
            Some(Csv)
        );
        assert_eq!(
            detect(
                None,
                Some("application/octet-stream"),
                None,
                b"PAR1\x15\x04"
            ),
            Some(Parquet)
        );
        assert_eq!(detect(None, None, None, b"PAR1"), Some(Parquet));
    }

    #[test]
    fn anything_else_is_unsupported() {
        for (explicit, ct, head) in [
            (Some("xlsx"), None, &b""[..]),
            (None, Some("application/json"), &b"{}"[..]),
            (None, Some("application/octet-stream"), &b"a,b\n1,2"[..]),
            (None, None, &b""[..]),
        ] {
            let err = detect_format(
                FormatHints {
                    explicit,
                    content_type: ct,
                    file_name: None,
                },
                head,
            );
            assert!(
                matches!(err, Err(IngestError::UnsupportedFormat { .. })),
                "{explicit:?} {ct:?}"
            );
        }
    }
}
