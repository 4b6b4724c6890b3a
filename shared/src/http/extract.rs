//! Extractors whose rejections are [`ApiError`]s, so malformed input gets the envelope too:
//! [`ApiJson`] (JSON bodies), [`ApiQuery`] (query strings) and [`Caller`] (the authenticated key).

use super::error::{ApiError, ErrorCode};
use crate::domain::accounts::Account;
use crate::domain::api_keys::ApiKey;
use crate::http::middleware::idempotency::SealingKey;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::{header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A JSON body (`Content-Type: application/json` or absent) parsed into `T`; failures are 400
/// or 422 (see [`json_error`]), 413 over the body limit, 415 for another content type.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

fn is_json_content_type(value: &str) -> bool {
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Turns a serde_json failure into the error that says where and what: bad syntax and a
/// missing required field are 400 `invalid_request` (SPEC), a well-formed body of the wrong
/// shape (wrong type, unknown field) is 422 `validation_error`.
fn json_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => ApiError::invalid_request(format!(
            "The body is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        )),
        Category::Data if e.to_string().starts_with("missing field") => {
            ApiError::invalid_request(format!("A required field is missing: {e}"))
        }
        Category::Data => ApiError::new(
            ErrorCode::ValidationError,
            format!("The JSON body does not have the expected shape: {e}"),
        ),
        Category::Io => ApiError::invalid_request(format!("The body could not be read: {e}")),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !is_json_content_type(ct) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "This route takes a JSON body; send Content-Type: application/json (got {ct:?})."
                    ),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
        if bytes.is_empty() {
            return Err(ApiError::invalid_request(
                "This route needs a JSON body; the body was empty.",
            ));
        }
        parse_json_body(&bytes).map(ApiJson)
    }
}

/// A JSON body parsed into `T`: 400 for bad syntax (including numbers out of range, `NaN`,
/// nesting deeper than 128 and a key named twice in an object) and a missing required field,
/// 422 for a well-formed body of the wrong shape.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    reject_duplicate_keys(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| json_error(&e))
}

/// Whether a query string's percent-encoded bytes are UTF-8 (the decoder would otherwise put
/// replacement characters in their place, and a name would change behind the client's back).
pub fn query_is_utf8(query: &str) -> bool {
    let bytes = query.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    decoded.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => decoded.push(b'%'),
            },
            b => decoded.push(b),
        }
        i += 1;
    }
    std::str::from_utf8(&decoded).is_ok()
}

fn not_utf8_query() -> ApiError {
    ApiError::invalid_request(
        "The query string is not valid UTF-8 once percent-decoded; encode text as UTF-8.",
    )
}

/// The query pairs of `uri`, refused (400) when they are not UTF-8.
pub fn checked_query(uri: &axum::http::Uri) -> Result<(), ApiError> {
    match uri.query() {
        Some(q) if !query_is_utf8(q) => Err(not_utf8_query()),
        _ => Ok(()),
    }
}

/// A JSON body in which an object names a key twice is refused (400 `invalid_request`): parsers
/// disagree on which value wins, so the server would act on what a proxy or log did not see.
/// Syntax errors are reported as [`json_error`] does.
pub fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    match serde_json::from_slice::<UniqueKeys>(bytes) {
        Ok(UniqueKeys) => Ok(()),
        Err(e) => match e.classify() {
            serde_json::error::Category::Data => Err(ApiError::invalid_request(format!(
                "The body is not valid JSON: {e}. Send each key of an object once."
            ))
            .with_details(serde_json::json!({ "line": e.line(), "column": e.column() }))),
            _ => Err(json_error(&e)),
        },
    }
}

/// Any JSON value whose objects each name a key at most once (nothing is kept).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "an object names the key {key:?} twice"
                )));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string parsed into `T`; a failure is a 400 `invalid_request` naming the problem.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        checked_query(&parts.uri)?;
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::invalid_request(format!("Bad query string: {}", e.body_text())))
    }
}

/// The caller, as established by the authentication layer.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Shared with the lookup cache: the layers and the handler each take a copy of the caller.
    pub account: Arc<Account>,
    pub key: Arc<ApiKey>,
    /// Derived from the presented secret: seals what the idempotency layer keeps for this key.
    pub sealing_key: SealingKey,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("route served without the authentication layer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/csv"));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(reject_duplicate_keys(br#"{"a": 1, "b": [{"a": 2}, {"a": 3}]}"#).is_ok());
        for body in [
            &br#"{"a": 1, "a": 2}"#[..],
            br#"{"x": {"tags": {"k": "1", "k": "2"}}}"#,
            br#"[{"a": 1}, {"b": 1, "b": 1}]"#,
        ] {
            let e = reject_duplicate_keys(body).expect_err("a duplicate key");
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.message.contains("twice"), "{}", e.message);
        }
        let e = reject_duplicate_keys(b"{\"a\": ").expect_err("truncated");
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn queries_must_decode_to_utf8() {
        assert!(query_is_utf8("name=caf%C3%A9&limit=5"));
        assert!(query_is_utf8("a=100%"));
        assert!(query_is_utf8("a=%zz"));
        assert!(!query_is_utf8("name=%C3%28"));
        assert!(!query_is_utf8("limit=%FF"));
    }
}
