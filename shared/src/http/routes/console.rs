//! `GET /console`: the web console, served by the same router as the API so that a person gets
//! the product in a browser wherever the API runs — `plexe serve` locally, the `keys` function
//! on AWS (API Gateway's `$default` route sends every path no other route takes to it, so the
//! console needs no route of its own in the template, and no bucket or CDN beside the API).
//!
//! The console is a handful of hand-written files under `shared/console/` (HTML, CSS and plain
//! JavaScript modules: no framework, no build step, nothing fetched from another origin),
//! compiled into the binary. It calls the public JSON API only, same origin, with the API key
//! the person typed, kept in the tab's `sessionStorage` and sent as `Authorization: Bearer`:
//! no cookie (so no cross-site request can ride on it) and no server-side session.
//!
//! Caching: the page itself is revalidated on every load (`no-cache` + ETag); it names its
//! assets under `/console/{build}/{asset}`, where `build` is a hash of every asset, so an
//! asset URL never changes meaning and is cached for a year as `immutable`. The modules import
//! each other by relative path and so always stay within one build. An unknown asset, or one
//! of another build, is the JSON 404 envelope.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and connections from
//! this origin only, no inline script or style, no framing, no form posts), `nosniff` and
//! `no-referrer`.

use crate::api::ErrorEnvelope;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The policy every console answer carries. `img-src data:` lets the page name an empty
/// `data:` favicon (so the browser asks for no `/favicon.ico`); the charts are SVG elements
/// built by script and load nothing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page: asked again on every load (a 304 when unchanged), so a new binary's console is
/// picked up at once.
const PAGE_CACHE: &str = "no-cache";
/// A file of one build: its URL names the build, so it never changes.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One file of the console.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../../console/", $name)),
        }
    };
}

/// Every file the page loads besides itself (a test checks this list against the folder).
pub const ASSETS: &[Asset] = &[
    asset!("console.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("charts.js", JS),
    asset!("datasets.js", JS),
    asset!("models.js", JS),
    asset!("model.js", JS),
    asset!("predict.js", JS),
    asset!("settings.js", JS),
];

/// The page, with `{{build}}` where the asset URLs name the build.
const INDEX_TEMPLATE: &str = include_str!("../../../console/index.html");

/// A hash of every asset's name and bytes: the path segment their URLs share.
pub static BUILD: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for asset in ASSETS {
        hash.update((asset.name.len() as u64).to_le_bytes());
        hash.update(asset.name.as_bytes());
        hash.update((asset.body.len() as u64).to_le_bytes());
        hash.update(asset.body);
    }
    hex::encode(&hash.finalize()[..8])
});

/// The page as served, and its ETag.
pub static INDEX: LazyLock<(String, String)> = LazyLock::new(|| {
    let page = INDEX_TEMPLATE.replace("{{build}}", &BUILD);
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(page.as_bytes())[..8]));
    (page, etag)
});

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page_slash))
        .route("/console/{build}/{asset}", get(asset))
}

#[utoipa::path(
    get,
    path = "/console",
    tag = "console",
    operation_id = "console_page",
    summary = "The web console (sign in with an API key; no key needed to load it)",
    security(()),
    responses((status = 200, description = "The console's page", content_type = "text/html", body = String))
)]
async fn page(headers: HeaderMap) -> Response {
    let (body, etag) = &*INDEX;
    answer(&headers, HTML, body.as_bytes(), etag, PAGE_CACHE)
}

#[utoipa::path(
    get,
    path = "/console/",
    tag = "console",
    operation_id = "console_page_slash",
    summary = "The web console (the same page as /console)",
    security(()),
    responses((status = 200, description = "The console's page", content_type = "text/html", body = String))
)]
async fn page_slash(headers: HeaderMap) -> Response {
    page(headers).await
}

#[utoipa::path(
    get,
    path = "/console/{build}/{asset}",
    tag = "console",
    operation_id = "console_asset",
    summary = "A script or style sheet of the console (cached for good: the URL names the build)",
    security(()),
    params(
        ("build" = String, Path, description = "The build the page names (a hash of its files)"),
        ("asset" = String, Path, description = "The file, e.g. `app.js`")
    ),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css")
        )),
        (status = 404, description = "No such file in this build", body = ErrorEnvelope)
    )
)]
async fn asset(
    Path((build, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let found = (build == *BUILD)
        .then(|| ASSETS.iter().find(|a| a.name == name))
        .flatten()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "No console file `{name}` in build `{build}`; reload /console for the current one."
            ))
        })?;
    let etag = format!("\"{}\"", *BUILD);
    Ok(answer(
        &headers,
        found.content_type,
        found.body,
        &etag,
        ASSET_CACHE,
    ))
}

/// `body` with the console's headers, or a bodiless 304 when the client's copy is current.
fn answer(
    request: &HeaderMap,
    content_type: &'static str,
    body: &'static [u8],
    etag: &str,
    cache: &'static str,
) -> Response {
    let current = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    let mut response = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ] {
        headers.insert(name, value);
    }
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// This route's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(page, page_slash, asset))]
pub struct ConsoleApi;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backends, Config};
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(dir: &std::path::Path) -> axum::Router {
        let backends = Backends::embedded(dir, "http://127.0.0.1:1").expect("embedded backends");
        crate::http::app(AppState::new(backends, Config::embedded_defaults(dir)))
    }

    async fn get(app: &axum::Router, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app.clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("answer")
    }

    async fn body(response: Response) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    }

    fn header<'a>(response: &'a Response, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_with_strict_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(dir.path());
        for path in ["/console", "/console/", "/v1/console"] {
            let page = get(&app, path, &[]).await;
            assert_eq!(page.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&page, "content-type"), HTML);
            assert_eq!(
                header(&page, "content-security-policy"),
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(header(&page, "x-content-type-options"), "nosniff");
            assert_eq!(header(&page, "referrer-policy"), "no-referrer");
            assert_eq!(header(&page, "cache-control"), PAGE_CACHE);
            let etag = header(&page, "etag").to_string();
            let html = String::from_utf8(body(page).await).expect("utf-8");
            assert!(html.contains(&format!("/console/{}/app.js", *BUILD)));
            assert!(!html.contains("{{build}}"));

            let again = get(&app, path, &[("if-none-match", &etag)]).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
            assert!(body(again).await.is_empty());
        }
        for asset in ASSETS {
            let path = format!("/console/{}/{}", *BUILD, asset.name);
            let response = get(&app, &path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), asset.content_type);
            assert_eq!(header(&response, "cache-control"), ASSET_CACHE);
            assert_eq!(
                header(&response, "content-security-policy"),
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(body(response).await, asset.body);
        }
    }

    #[tokio::test]
    async fn an_unknown_asset_or_build_is_the_json_404_envelope() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = app(dir.path());
        for path in [
            format!("/console/{}/nope.js", *BUILD),
            "/console/0123456789abcdef/app.js".to_string(),
            "/console/app.js".to_string(),
        ] {
            let response = get(&app, &path, &[]).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            let json: serde_json::Value =
                serde_json::from_slice(&body(response).await).expect("JSON envelope");
            assert_eq!(json["error"]["code"], "not_found", "{path}");
            assert!(
                json["error"]["request_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("req_"))
            );
        }
    }

    fn folder() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
    }

    /// Every file in `shared/console/` is served, and every module a script imports is one.
    #[test]
    fn every_console_file_is_listed_and_every_import_resolves() {
        let mut on_disk: Vec<String> = std::fs::read_dir(folder())
            .expect("console folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name != "index.html")
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let source = std::str::from_utf8(asset.body).expect("utf-8");
            for line in source.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once("from '")
                    .or_else(|| line.split_once("import '"))
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(path, _)| path)
                    .unwrap_or_else(|| panic!("{}: unreadable import {line}", asset.name));
                let name = target
                    .strip_prefix("./")
                    .unwrap_or_else(|| panic!("{}: import {target} is not a sibling", asset.name));
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{}: imports {target}, which is not served",
                    asset.name
                );
            }
        }
    }

    /// What the policy forbids is not used: no inline script or style in the page, no
    /// `style=` attribute, no HTML parsing of strings in the scripts.
    #[test]
    fn the_page_needs_nothing_the_policy_forbids() {
        let html = INDEX_TEMPLATE.to_ascii_lowercase();
        assert!(!html.contains("style="));
        assert!(!html.contains("<style"));
        for (_, rest) in html
            .match_indices(" on")
            .map(|(at, _)| html.split_at(at + 3))
        {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            assert!(
                name.is_empty() || !rest[name.len()..].starts_with('='),
                "inline event handler on{name} in index.html"
            );
        }
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap_or_default();
            assert!(open.contains("src="), "inline script in index.html");
        }
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let source = std::str::from_utf8(asset.body).expect("utf-8");
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "new Function",
            ] {
                assert!(!source.contains(sink), "{} uses {sink}", asset.name);
            }
            assert!(
                !source.contains("setAttribute('style'"),
                "{} sets a style attribute",
                asset.name
            );
        }
    }

    /// The first load (the page and every asset) stays well under 200 KB even uncompressed.
    #[test]
    fn the_first_load_is_small() {
        let total = INDEX.0.len() + ASSETS.iter().map(|a| a.body.len()).sum::<usize>();
        assert!(
            total <= 200 * 1024,
            "the console's first load is {total} bytes"
        );
    }
}
