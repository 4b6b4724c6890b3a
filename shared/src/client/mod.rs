//! A typed HTTP client of the plexe API, for any base URL (a local `plexe serve` or the deployed
//! API Gateway URL). Requests and answers are the structs of [`crate::api`], the same ones the
//! handlers serialize; an error answer is the SPEC's envelope ([`ClientError::Api`]).
//!
//! One module per concern, each adding methods to [`Client`]: [`keys`], [`datasets`] (direct
//! upload and upload sessions), [`models`] (builds, versions, logs, deployments, the ONNX
//! artifact) and [`predictions`]. Transfers that can be large report their bytes to a
//! [`Progress`].

pub mod datasets;
pub mod keys;
pub mod models;
pub mod predictions;

use crate::api::{ErrorBody, ErrorEnvelope};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What a call can end in besides its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with its error envelope.
    #[error("{} ({} {}, request {})", .0.message, .0.status, .0.code, .0.request_id)]
    Api(ErrorBody),
    /// An answer that is not the API's (a proxy's, a gateway's, S3's for an upload URL).
    #[error("HTTP {status} from {url}: {body}")]
    Unexpected {
        status: u16,
        url: String,
        body: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {url}: {source}")]
    Connection {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("unreadable answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A request this client refuses to send (a bad base URL or key, a batch size out of range).
    #[error("{0}")]
    Invalid(String),
    /// A local file's contents that cannot be used (a CSV that does not parse, an input with no
    /// rows), or an answer that does not fit the rows sent.
    #[error("{0}")]
    Content(String),
}

impl ClientError {
    fn connection(url: &Url, source: reqwest::Error) -> Self {
        ClientError::Connection {
            url: url.to_string(),
            source,
        }
    }

    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        ClientError::File {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Receives the bytes of a transfer as they move (an upload's or a download's).
pub trait Progress: Send + Sync {
    /// The transfer's size, once known.
    fn set_total(&self, _bytes: u64) {}
    /// `bytes` more have moved.
    fn advance(&self, bytes: u64);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}

/// `limit` and `offset` of a list call (the server's defaults when `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl Page {
    fn pairs(self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(offset) = self.offset {
            pairs.push(("offset", offset.to_string()));
        }
        pairs
    }
}

/// A connection to one plexe API with one key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    authorization: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Client")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// How long to wait for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// A client of the API at `base_url` (`http://127.0.0.1:8080`, or an API Gateway URL, with
    /// or without a path prefix) sending `api_key` as a bearer token.
    pub fn new(base_url: &str, api_key: &str) -> Result<Client, ClientError> {
        let mut base_url = Url::parse(base_url.trim())
            .map_err(|e| ClientError::Invalid(format!("the URL {base_url:?} is invalid: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(ClientError::Invalid(format!(
                "the URL {base_url} is not an http(s) base URL"
            )));
        }
        base_url.set_query(None);
        base_url.set_fragment(None);
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", api_key.trim()))
            .map_err(|_| {
                ClientError::Invalid("the API key contains characters a header cannot carry".into())
            })?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("plexe-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Invalid(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base_url,
            authorization,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `{base}/v1/{segments…}` with each segment percent-encoded, and `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// A request to the API, with the key.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
    }

    /// Sends `request`; a non-2xx answer becomes [`ClientError::Api`] (or `Unexpected`).
    async fn send(&self, request: RequestBuilder, url: &Url) -> Result<Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::connection(url, e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_of(response, url).await)
    }

    /// Sends `request` and reads its JSON answer as `T`.
    async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        url: &Url,
    ) -> Result<T, ClientError> {
        let response = self.send(request, url).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::connection(url, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let url = self.url(segments, query);
        self.json(self.request(Method::GET, url.clone()), &url)
            .await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(segments, &[]);
        self.json(self.request(Method::POST, url.clone()).json(body), &url)
            .await
    }

    /// A POST without a body (completing an upload session).
    async fn post_empty<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        let url = self.url(segments, &[]);
        self.json(self.request(Method::POST, url.clone()), &url)
            .await
    }

    async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        let url = self.url(segments, &[]);
        self.json(self.request(Method::DELETE, url.clone()), &url)
            .await
    }
}

/// A temporary file in `folder` for output that is renamed into place once whole; readable
/// like any new file (0666 less the umask), not only by its owner as temporary files are.
pub(crate) fn staged_file(
    folder: &std::path::Path,
) -> Result<tempfile::NamedTempFile, ClientError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".plexe-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
        .tempfile_in(folder)
        .map_err(|e| ClientError::file(folder, e))
}

/// The error of a non-2xx answer: the envelope when the body is one.
async fn error_of(response: Response, url: &Url) -> ClientError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorEnvelope>(&body) {
        Ok(envelope) => ClientError::Api(envelope.error),
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let mut text: String = text.chars().take(500).collect();
            if text.trim().is_empty() {
                text = "(no body)".into();
            }
            ClientError::Unexpected {
                status,
                url: url.to_string(),
                body: text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let client = Client::new("https://api.example.com/prod/", "plx_key").expect("client");
        let url = client.url(
            &["models", "a b", "latest"],
            &[
                ("limit", "5".to_string()),
                ("job_id", "job_1&x".to_string()),
            ],
        );
        assert_eq!(
            url.as_str(),
            "https://api.example.com/prod/v1/models/a%20b/latest?limit=5&job_id=job_1%26x"
        );
        let local = Client::new("http://127.0.0.1:8080", "k").expect("client");
        assert_eq!(
            local.url(&["datasets"], &[]).as_str(),
            "http://127.0.0.1:8080/v1/datasets"
        );
    }

    #[test]
    fn bad_base_urls_and_keys_are_refused() {
        assert!(matches!(
            Client::new("localhost:8080", "k"),
            Err(ClientError::Invalid(_))
        ));
        assert!(matches!(
            Client::new("ftp://example.com", "k"),
            Err(ClientError::Invalid(_))
        ));
        assert!(matches!(
            Client::new("http://127.0.0.1:8080", "bad\nkey"),
            Err(ClientError::Invalid(_))
        ));
    }

    #[test]
    fn the_debug_form_hides_the_key() {
        let client = Client::new("http://127.0.0.1:8080", "plx_secret").expect("client");
        assert!(!format!("{client:?}").contains("plx_secret"));
    }
}
