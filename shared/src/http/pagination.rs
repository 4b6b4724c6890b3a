//! `?limit=&offset=` for list routes (limit 1–100, default 20; offset ≥ 0, default 0) and the
//! `{"<items>": [...], "pagination": {...}}` response shape.

use super::error::ApiError;
use crate::api::PageInfo;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde_json::json;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// The largest `offset` taken (beyond it is 400, as a limit out of range is).
pub const MAX_OFFSET: usize = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub limit: usize,
    pub offset: usize,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl Pagination {
    /// Parses the pagination parameters out of a query string's pairs (other pairs are left to
    /// the route).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut p = Pagination::default();
        for (name, value) in pairs {
            match name.as_str() {
                "limit" => {
                    p.limit = match whole_number(value) {
                        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
                        _ => {
                            return Err(ApiError::invalid_request(format!(
                                "limit must be a whole number from 1 to {MAX_LIMIT} (got {value:?})"
                            ))
                            .with_details(json!({ "field": "limit" })));
                        }
                    }
                }
                "offset" => {
                    p.offset = match whole_number(value) {
                        Some(n) if n <= MAX_OFFSET => n,
                        _ => {
                            return Err(ApiError::invalid_request(format!(
                                "offset must be a whole number from 0 to {MAX_OFFSET} (got {value:?})"
                            ))
                            .with_details(json!({ "field": "offset" })));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// The pagination block of a list of `total` items.
    pub fn info(&self, total: usize) -> PageInfo {
        PageInfo::new(total, self.limit, self.offset)
    }

    /// This page of `items`.
    pub fn slice<'a, T>(&self, items: &'a [T]) -> impl Iterator<Item = &'a T> {
        items.iter().skip(self.offset).take(self.limit)
    }
}

/// A query value that is a whole number in decimal digits only (no sign, no spaces), as the
/// document's `integer` says.
pub fn whole_number(value: &str) -> Option<usize> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// How the list routes document `limit` and `offset` (parsed by [`Pagination`]).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Items to skip, 0 to 1,000,000,000 (default 0).
    #[param(minimum = 0, maximum = 1_000_000_000)]
    offset: Option<u64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        super::extract::checked_query(&parts.uri)?;
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|e| {
                ApiError::invalid_request(format!("Bad query string: {}", e.body_text()))
            })?;
        Pagination::from_pairs(&pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<Pagination, ApiError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Pagination::from_pairs(&pairs)
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            parse(&[]).ok(),
            Some(Pagination {
                limit: 20,
                offset: 0
            })
        );
        assert_eq!(
            parse(&[("limit", "100"), ("offset", "5")]).ok(),
            Some(Pagination {
                limit: 100,
                offset: 5
            })
        );
        for bad in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "ten"),
            ("offset", "-1"),
            ("offset", "x"),
            ("offset", "1000000001"),
            ("offset", "99999999999999999999999"),
            ("limit", "+5"),
            ("limit", " 5"),
        ] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn has_more_reflects_the_rest() {
        let p = Pagination {
            limit: 10,
            offset: 20,
        };
        assert!(p.info(45).has_more);
        assert!(!p.info(30).has_more);
        assert_eq!(p.info(45).total, 45);
    }
}
