//! The datasets API (SPEC §3) over real HTTP, on both backends: direct uploads (CSV, Parquet,
//! multipart), typed errors for broken files with nothing left behind, the 6 MB limit, upload
//! sessions (signed URL, size/sha256 checks), preview and profile shapes, pagination, account
//! isolation, delete.

use integration_tests::{TestApp, http_client, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::domain::accounts::Tier;

on_both_backends!(
    direct_uploads_parse_and_profile,
    broken_files_are_typed_errors_and_leave_nothing,
    direct_upload_over_6_mb_is_413,
    upload_session_round_trip,
    upload_session_checks_sha256_and_size,
    preview_rows_are_typed_objects,
    listing_is_paginated_newest_first,
    other_accounts_datasets_are_not_found,
    delete_removes_record_and_file,
    read_only_keys_cannot_upload,
    parquet_through_an_upload_session,
    concurrent_completions_create_one_dataset,
    idempotent_direct_upload_creates_one_dataset,
    builds_load_the_table_and_resolve_upload_ids,
    wide_datasets_keep_their_whole_profile,
    upload_sessions_are_bounded,
);

const SAMPLE_CSV: &str = "id,price,in_stock,color,sold_at\n\
1,9.5,true,red,2024-01-02T03:04:05Z\n\
2,,false,blue,2024-02-01T00:00:00Z\n\
3,12.25,true,red,\n\
4,7,true,,2024-03-05T10:00:00Z\n";

fn sha256_hex(bytes: &[u8]) -> String {
    hex_encode(&Sha256::digest(bytes))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A client carrying `key` on every request.
struct Api<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    key: String,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp) -> (Api<'a>, String) {
        let (account_id, key) = app.account(Tier::Enterprise).await;
        (
            Api {
                app,
                client: http_client(),
                key,
            },
            account_id,
        )
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.app.at(path))
            .bearer_auth(&self.key)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = rb.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    async fn upload_csv(&self, name: &str, csv: &str) -> Value {
        let (status, body) = self
            .send(
                self.req(reqwest::Method::POST, &format!("/datasets?name={name}"))
                    .header("content-type", "text/csv")
                    .body(csv.to_owned()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn column<'v>(dataset: &'v Value, name: &str) -> &'v Value {
    dataset["columns"]
        .as_array()
        .and_then(|cols| cols.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("column {name} missing from {dataset}"))
}

fn sample_parquet() -> Vec<u8> {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let batch = RecordBatch::try_from_iter(vec![
        (
            "qty",
            Arc::new(Int64Array::from(vec![Some(3), Some(5), None])) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5])) as ArrayRef,
        ),
        (
            "label",
            Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
        ),
    ])
    .expect("record batch");
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None)
        .expect("parquet writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close parquet");
    out
}

async fn direct_uploads_parse_and_profile(app: &TestApp) {
    let (api, _) = Api::new(app).await;

    // Raw CSV body.
    let ds = api.upload_csv("sales", SAMPLE_CSV).await;
    assert!(
        ds["dataset_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ds_"))
    );
    assert_eq!(ds["name"], "sales");
    assert_eq!(ds["format"], "csv");
    assert_eq!(ds["size_bytes"], SAMPLE_CSV.len());
    assert_eq!(ds["sha256"], sha256_hex(SAMPLE_CSV.as_bytes()));
    assert_eq!(ds["row_count"], 4);
    assert!(
        ds["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20)
    );
    let names: Vec<&str> = ds["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["id", "price", "in_stock", "color", "sold_at"]);
    let price = column(&ds, "price");
    assert_eq!(price["type"], "float");
    assert_eq!(price["missing"], 1);
    assert_eq!(price["unique"], 3);
    assert_eq!(price["min"], 7.0);
    assert_eq!(price["max"], 12.25);
    let mean = price["mean"].as_f64().expect("mean");
    assert!((mean - (9.5 + 12.25 + 7.0) / 3.0).abs() < 1e-9);
    assert_eq!(column(&ds, "id")["type"], "integer");
    assert_eq!(column(&ds, "in_stock")["type"], "boolean");
    assert_eq!(column(&ds, "sold_at")["type"], "datetime");
    let color = column(&ds, "color");
    assert_eq!(color["type"], "string");
    assert_eq!(color["missing"], 1);
    assert_eq!(color["top_values"][0], json!({"value": "red", "count": 2}));

    // The same dataset is what GET returns.
    let id = ds["dataset_id"].as_str().expect("id");
    let (status, got) = api.get(&format!("/v1/datasets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, ds);

    // Parquet, by content type.
    let parquet = sample_parquet();
    let (status, ds) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets?name=pq")
                .header("content-type", "application/vnd.apache.parquet")
                .body(parquet.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["format"], "parquet");
    assert_eq!(ds["row_count"], 3);
    assert_eq!(ds["size_bytes"], parquet.len());
    assert_eq!(column(&ds, "qty")["type"], "integer");
    assert_eq!(column(&ds, "qty")["missing"], 1);
    assert_eq!(column(&ds, "score")["mean"], 1.5);

    // Parquet as octet-stream with ?format=parquet.
    let (status, ds) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets?format=parquet")
                .header("content-type", "application/octet-stream")
                .body(parquet),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["format"], "parquet");

    // Multipart with a `file` part; the name defaults to the file name.
    let part = reqwest::multipart::Part::bytes(SAMPLE_CSV.as_bytes().to_vec())
        .file_name("shop.csv")
        .mime_str("application/vnd.ms-excel")
        .expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    let (status, ds) = api
        .send(api.req(reqwest::Method::POST, "/datasets").multipart(form))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["name"], "shop.csv");
    assert_eq!(ds["row_count"], 4);

    // A multipart body without a file part is a 400.
    let form = reqwest::multipart::Form::new().text("name", "x");
    let (status, body) = api
        .send(api.req(reqwest::Method::POST, "/datasets").multipart(form))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn dataset_count(api: &Api<'_>) -> u64 {
    let (status, body) = api.get("/datasets").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["pagination"]["total"].as_u64().expect("total")
}

/// What is wrong, the file, and the line and column the error must name.
type BrokenCase = (&'static str, &'static [u8], Option<u64>, Option<u64>);

async fn broken_files_are_typed_errors_and_leave_nothing(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let cases: [BrokenCase; 6] = [
        ("empty file", b"", None, None),
        ("header only", b"a,b\n", Some(1), None),
        ("ragged row", b"a,b\n1,2\n3,4\n5\n", Some(4), None),
        ("duplicate column", b"a,a\n1,2\n", Some(1), Some(2)),
        ("empty column name", b"a,,c\n1,2,3\n", Some(1), Some(2)),
        ("not utf-8", b"a,b\n1,\xff\xfe\n", Some(2), Some(2)),
    ];
    for (what, bytes, line, col) in cases {
        let (status, body) = api
            .send(
                api.req(reqwest::Method::POST, "/datasets")
                    .header("content-type", "text/csv")
                    .body(bytes.to_vec()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert_eq!(error_code(&body), "validation_error", "{what}");
        assert!(
            body["error"]["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("req_"))
        );
        if let Some(line) = line {
            assert_eq!(body["error"]["details"]["line"], line, "{what}: {body}");
        }
        if let Some(col) = col {
            assert_eq!(body["error"]["details"]["column"], col, "{what}: {body}");
        }
    }
    // Declared Parquet that is not.
    let (status, body) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets")
                .header("content-type", "application/vnd.apache.parquet")
                .body("a,b\n1,2\n"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Parquet"))
    );
    // Neither CSV nor Parquet.
    let (status, body) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets")
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(error_code(&body), "unsupported_media_type");
    assert_eq!(
        dataset_count(&api).await,
        0,
        "no dataset survives a failed upload"
    );
}

async fn direct_upload_over_6_mb_is_413(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let mut csv = String::from("a,b\n");
    while csv.len() < 7 * 1024 * 1024 {
        csv.push_str("123456,abcdefgh\n");
    }
    let (status, body) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets")
                .header("content-type", "text/csv")
                .body(csv.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/datasets/uploads"), "{message}");
    assert_eq!(dataset_count(&api).await, 0);

    // The same file as a multipart part, sent chunked (no declared length): 413 likewise.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = csv
        .into_bytes()
        .chunks(256 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .file_name("big.csv");
    let form = reqwest::multipart::Form::new().part("file", part);
    let (status, body) = api
        .send(api.req(reqwest::Method::POST, "/datasets").multipart(form))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");
    assert_eq!(dataset_count(&api).await, 0);
}

/// A CSV of `rows` rows (a few hundred KB for 10k rows).
fn generated_csv(rows: usize) -> String {
    let mut csv = String::from("n,x,group\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},{:.3},g{}\n", i as f64 * 0.5, i % 7));
    }
    csv
}

async fn create_session(api: &Api<'_>, body: Value) -> Value {
    let (status, session) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets/uploads")
                .json(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    session
}

async fn put_file(url: &str, bytes: Vec<u8>) -> StatusCode {
    // No API key: the URL itself is the authorization.
    http_client()
        .put(url)
        .body(bytes)
        .send()
        .await
        .expect("PUT sent")
        .status()
}

async fn staged_size(app: &TestApp, account_id: &str, upload_id: &str) -> Option<u64> {
    app.state
        .blobs
        .size(&format!("uploads/{account_id}/{upload_id}/data"))
        .await
        .expect("blob size")
}

async fn upload_session_round_trip(app: &TestApp) {
    let (api, account_id) = Api::new(app).await;
    let csv = generated_csv(10_000);
    let session = create_session(
        &api,
        json!({"name": "big", "format": "csv", "size_bytes": csv.len(), "sha256": sha256_hex(csv.as_bytes())}),
    )
    .await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    assert!(upload_id.starts_with("upl_"));
    assert_eq!(session["method"], "PUT");
    assert!(
        session["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let url = session["upload_url"].as_str().expect("upload_url");

    // Completing before the PUT is a conflict.
    let complete = format!("/datasets/uploads/{upload_id}/complete");
    let (status, body) = api.send(api.req(reqwest::Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let status = put_file(url, csv.clone().into_bytes()).await;
    assert!(status.is_success(), "PUT to the upload URL: {status}");
    assert_eq!(
        staged_size(app, &account_id, upload_id).await,
        Some(csv.len() as u64)
    );

    let (status, ds) = api.send(api.req(reqwest::Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["name"], "big");
    assert_eq!(ds["row_count"], 10_000);
    assert_eq!(ds["size_bytes"], csv.len());
    assert_eq!(ds["sha256"], sha256_hex(csv.as_bytes()));
    assert_eq!(column(&ds, "group")["unique"], 7);
    assert_eq!(column(&ds, "n")["max"], 9_999);
    assert_eq!(
        staged_size(app, &account_id, upload_id).await,
        None,
        "the staged copy is removed once the dataset exists"
    );
    let id = ds["dataset_id"].as_str().expect("id");
    let (status, got) = api.get(&format!("/datasets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["row_count"], 10_000);

    // A second completion does not create a second dataset.
    let (status, body) = api.send(api.req(reqwest::Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(dataset_count(&api).await, 1);

    // The local server refuses a file for a completed session (it would be an orphan); S3
    // accepts it and the bucket's lifecycle rule removes it.
    if app.backend == integration_tests::Backend::Embedded {
        assert_eq!(
            put_file(url, b"a\n1\n".to_vec()).await,
            StatusCode::CONFLICT
        );
        assert_eq!(staged_size(app, &account_id, upload_id).await, None);
    }

    // Unknown sessions are 404.
    let (status, _) = api
        .send(api.req(
            reqwest::Method::POST,
            "/datasets/uploads/upl_01jzzzzzzzzzzzzzzzzzzzzzzz/complete",
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bad session requests.
    for bad in [
        json!({"name": "x", "format": "xlsx"}),
        json!({"name": "x", "format": "csv", "sha256": "abc"}),
        json!({"name": "x", "format": "csv", "size_bytes": 600_u64 * 1024 * 1024}),
    ] {
        let (status, body) = api
            .send(
                api.req(reqwest::Method::POST, "/datasets/uploads")
                    .json(&bad),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, body) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets/uploads")
                .json(&json!({"format": "csv"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn upload_session_checks_sha256_and_size(app: &TestApp) {
    let (api, account_id) = Api::new(app).await;
    let csv = generated_csv(100);

    // Wrong SHA-256: 422, staged copy deleted, no dataset.
    let wrong = sha256_hex(b"something else");
    let session =
        create_session(&api, json!({"name": "s", "format": "csv", "sha256": wrong})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        csv.clone().into_bytes(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["field"], "sha256");
    assert_eq!(
        body["error"]["details"]["actual"],
        sha256_hex(csv.as_bytes())
    );
    assert_eq!(staged_size(app, &account_id, upload_id).await, None);

    // Wrong size: 422 likewise.
    let session = create_session(
        &api,
        json!({"name": "s", "format": "csv", "size_bytes": csv.len() + 1}),
    )
    .await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        csv.clone().into_bytes(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["field"], "size_bytes");
    assert_eq!(staged_size(app, &account_id, upload_id).await, None);

    // A broken file through a session: the typed ingest error, nothing left.
    let session = create_session(&api, json!({"name": "s", "format": "csv"})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        b"a,b\n1,2\n3\n".to_vec(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["line"], 3);
    assert_eq!(staged_size(app, &account_id, upload_id).await, None);
    assert_eq!(dataset_count(&api).await, 0);

    // The session stays usable: the fixed file, PUT to the same URL, completes.
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        csv.clone().into_bytes(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, ds) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["row_count"], 100);
    assert_eq!(dataset_count(&api).await, 1);
}

async fn preview_rows_are_typed_objects(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let ds = api.upload_csv("p", SAMPLE_CSV).await;
    let id = ds["dataset_id"].as_str().expect("id");
    let (status, body) = api.get(&format!("/datasets/{id}/preview?limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dataset_id"], id);
    assert_eq!(
        body["columns"],
        json!(["id", "price", "in_stock", "color", "sold_at"])
    );
    assert_eq!(
        body["rows"],
        json!([
            {"id": 1, "price": 9.5, "in_stock": true, "color": "red", "sold_at": "2024-01-02T03:04:05Z"},
            {"id": 2, "price": null, "in_stock": false, "color": "blue", "sold_at": "2024-02-01T00:00:00Z"}
        ])
    );
    let (status, body) = api.get(&format!("/datasets/{id}/preview")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(4),
        "default limit 20 covers all 4"
    );
    for bad in ["0", "101", "x"] {
        let (status, body) = api
            .get(&format!("/datasets/{id}/preview?limit={bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={bad}: {body}");
    }
}

async fn listing_is_paginated_newest_first(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let ds = api.upload_csv(name, SAMPLE_CSV).await;
        ids.push(ds["dataset_id"].as_str().expect("id").to_owned());
        // Ids are time-ordered at millisecond resolution.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (status, page) = api.get("/datasets?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page["pagination"],
        json!({"total": 3, "limit": 2, "offset": 0, "has_more": true})
    );
    let got: Vec<&str> = page["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .filter_map(|d| d["dataset_id"].as_str())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(page["datasets"][0]["name"], "three");
    assert!(page["datasets"][0]["columns"].is_array());
    let (_, page) = api.get("/datasets?limit=2&offset=2").await;
    assert_eq!(page["pagination"]["has_more"], false);
    assert_eq!(page["datasets"][0]["dataset_id"], ids[0].as_str());
    for bad in ["limit=0", "limit=101", "offset=-1"] {
        let (status, _) = api.get(&format!("/datasets?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn other_accounts_datasets_are_not_found(app: &TestApp) {
    let (alice, _) = Api::new(app).await;
    let (bob, _) = Api::new(app).await;
    let ds = alice.upload_csv("private", SAMPLE_CSV).await;
    let id = ds["dataset_id"].as_str().expect("id");
    for path in [format!("/datasets/{id}"), format!("/datasets/{id}/preview")] {
        let (status, body) = bob.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(error_code(&body), "not_found");
    }
    let (status, _) = bob
        .send(bob.req(reqwest::Method::DELETE, &format!("/datasets/{id}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(dataset_count(&bob).await, 0);
    // Alice's session cannot be completed by Bob either.
    let session = create_session(&alice, json!({"name": "s", "format": "csv"})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let (status, _) = bob
        .send(bob.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Still there for Alice.
    let (status, _) = alice.get(&format!("/datasets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
}

async fn delete_removes_record_and_file(app: &TestApp) {
    let (api, account_id) = Api::new(app).await;
    let ds = api.upload_csv("gone", SAMPLE_CSV).await;
    let id = ds["dataset_id"].as_str().expect("id");
    let data_key = format!("datasets/{account_id}/{id}/data.csv");
    assert_eq!(
        app.state.blobs.size(&data_key).await.expect("size"),
        Some(SAMPLE_CSV.len() as u64)
    );
    let (status, body) = api
        .send(api.req(reqwest::Method::DELETE, &format!("/datasets/{id}")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"dataset_id": id, "deleted": true}));
    let (status, _) = api.get(&format!("/datasets/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.state.blobs.size(&data_key).await.expect("size"), None);
    assert_eq!(dataset_count(&api).await, 0);
    let (status, _) = api
        .send(api.req(reqwest::Method::DELETE, &format!("/datasets/{id}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleting twice");
}

async fn read_only_keys_cannot_upload(app: &TestApp) {
    let (admin, account_id) = Api::new(app).await;
    let issued = shared::domain::api_keys::create_key(
        app.state.store.as_ref(),
        &account_id,
        "reader",
        vec![shared::domain::api_keys::Scope::Read],
    )
    .await
    .expect("read key");
    let reader = Api {
        app,
        client: http_client(),
        key: issued.secret,
    };
    let (status, body) = reader
        .send(
            reader
                .req(reqwest::Method::POST, "/datasets")
                .header("content-type", "text/csv")
                .body(SAMPLE_CSV),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let ds = admin.upload_csv("shared", SAMPLE_CSV).await;
    let (status, _) = reader
        .get(&format!(
            "/datasets/{}",
            ds["dataset_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    // No key at all.
    let status = http_client()
        .get(app.at("/datasets"))
        .send()
        .await
        .expect("sent")
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The local server's own upload URLs: a forged or expired token is refused (AWS URLs are S3's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_upload_urls_refuse_forged_and_expired_tokens() {
    let app = integration_tests::start_app(integration_tests::Backend::Embedded, "tokens")
        .await
        .expect("embedded app");
    let (api, account_id) = Api::new(&app).await;
    let session = create_session(&api, json!({"name": "t", "format": "csv"})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let url = session["upload_url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&app.url), "{url} is served by this server");

    // Forged: flip the last character of the signature.
    let mut forged = url.clone();
    let last = forged.pop().expect("non-empty");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        put_file(&forged, b"a\n1\n".to_vec()).await,
        StatusCode::FORBIDDEN
    );
    // A token for another key cannot be made without the secret: a made-up one is refused too.
    let made_up = format!("{}/uploads/eyJ9.AAAA", app.url);
    assert_eq!(
        put_file(&made_up, b"a\n1\n".to_vec()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(staged_size(&app, &account_id, upload_id).await, None);

    // Expired: a URL for the same key that expired already.
    let folder = app
        .state
        .folder_blobs
        .clone()
        .expect("embedded folder blobs");
    let expired = shared::ports::Blobs::presign_put(
        folder.as_ref(),
        &format!("uploads/{account_id}/{upload_id}/data"),
        std::time::Duration::ZERO,
        None,
    )
    .await
    .expect("presign");
    let response = http_client()
        .put(&expired)
        .body("a\n1\n")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.expect("envelope");
    assert_eq!(error_code(&body), "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired"))
    );
    assert_eq!(staged_size(&app, &account_id, upload_id).await, None);

    // A body declared over the 500 MB session limit is refused before it is read.
    let answer = raw_put_head(&url, 600 * 1024 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(staged_size(&app, &account_id, upload_id).await, None);

    // The genuine URL works, without any API key.
    assert!(put_file(&url, b"a\n1\n".to_vec()).await.is_success());
    assert_eq!(staged_size(&app, &account_id, upload_id).await, Some(4));
}

/// Sends only the head of a `PUT` to `url` declaring `content_length` bytes, and returns what
/// the server answers (without ever sending the body).
async fn raw_put_head(url: &str, content_length: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "PUT /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {content_length}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The whole answer: the server closes the connection since the body will never come.
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}}") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

async fn parquet_through_an_upload_session(app: &TestApp) {
    let (api, account_id) = Api::new(app).await;
    let parquet = sample_parquet();
    let session = create_session(
        &api,
        json!({"name": "pq", "format": "parquet", "size_bytes": parquet.len(), "sha256": sha256_hex(&parquet)}),
    )
    .await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        parquet.clone(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, ds) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ds}");
    assert_eq!(ds["format"], "parquet");
    assert_eq!(ds["row_count"], 3);
    assert_eq!(ds["sha256"], sha256_hex(&parquet));
    assert_eq!(
        column(&ds, "label")["top_values"][0],
        json!({"value": "a", "count": 2})
    );
    let id = ds["dataset_id"].as_str().expect("id");
    assert_eq!(
        app.state
            .blobs
            .size(&format!("datasets/{account_id}/{id}/data.parquet"))
            .await
            .expect("size"),
        Some(parquet.len() as u64)
    );

    // A CSV sent to a session declared as Parquet is refused with the Parquet error.
    let session = create_session(&api, json!({"name": "x", "format": "parquet"})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        b"a,b\n1,2\n".to_vec(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!("/datasets/uploads/{upload_id}/complete"),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Parquet")),
        "{body}"
    );
    assert_eq!(staged_size(app, &account_id, upload_id).await, None);
    assert_eq!(dataset_count(&api).await, 1);
}

async fn concurrent_completions_create_one_dataset(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let csv = generated_csv(20_000);
    let session = create_session(&api, json!({"name": "race", "format": "csv"})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        csv.into_bytes(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let complete = format!("/datasets/uploads/{upload_id}/complete");
    let attempts = (0..4).map(|_| api.send(api.req(reqwest::Method::POST, &complete)));
    let results = futures::future::join_all(attempts).await;
    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "exactly one completion wins: {results:?}");
    for (status, body) in &results {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::CONFLICT,
            "{status}: {body}"
        );
    }
    assert_eq!(dataset_count(&api).await, 1);
}

async fn idempotent_direct_upload_creates_one_dataset(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let send = || {
        api.send(
            api.req(reqwest::Method::POST, "/datasets?name=once")
                .header("content-type", "text/csv")
                .header("idempotency-key", "upload-once-1")
                .body(SAMPLE_CSV),
        )
    };
    let (status, first) = send().await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = send().await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first, "the stored response is replayed");
    assert_eq!(dataset_count(&api).await, 1);
}

/// The domain calls builds use: a dataset's table (read in place locally, through a temporary
/// file from S3), scoped to the account; and an `upload_id` resolved to its dataset, completing
/// the session when only the PUT happened.
async fn builds_load_the_table_and_resolve_upload_ids(app: &TestApp) {
    use shared::domain::{DomainError, datasets, uploads};
    let (api, account_id) = Api::new(app).await;
    let (_, other_account) = Api::new(app).await;
    let store = app.state.store.as_ref();
    let blobs = app.state.blobs.as_ref();

    let ds = api.upload_csv("t", SAMPLE_CSV).await;
    let id = ds["dataset_id"].as_str().expect("id");
    let (dataset, table) = datasets::load_table(store, blobs, &account_id, id)
        .await
        .expect("load_table");
    assert_eq!(dataset.dataset_id, id);
    assert_eq!(table.n_rows, 4);
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "price", "in_stock", "color", "sold_at"]);
    assert!(table.column("price").is_some_and(|c| c.data.is_missing(1)));
    assert!(matches!(
        datasets::load_table(store, blobs, &other_account, id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        datasets::get_dataset(store, blobs, &other_account, id).await,
        Err(DomainError::NotFound { .. })
    ));

    let csv = generated_csv(50);
    let session = create_session(&api, json!({"name": "by-upload", "format": "csv"})).await;
    let upload_id = session["upload_id"].as_str().expect("upload_id");
    let status = put_file(
        session["upload_url"].as_str().expect("url"),
        csv.into_bytes(),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let first = uploads::dataset_for_upload(store, blobs, None, &account_id, upload_id)
        .await
        .expect("completes the session");
    assert_eq!(first.row_count, 50);
    assert_eq!(first.name, "by-upload");
    let again = uploads::dataset_for_upload(store, blobs, None, &account_id, upload_id)
        .await
        .expect("the completed session's dataset");
    assert_eq!(again.dataset_id, first.dataset_id);
    assert!(
        uploads::dataset_for_upload(store, blobs, None, &other_account, upload_id)
            .await
            .is_err(),
        "another account's session"
    );
    assert_eq!(dataset_count(&api).await, 2);
}

/// A profile too big for one store item (DynamoDB stops at 400 KB) is kept beside the data and
/// still shown whole.
async fn wide_datasets_keep_their_whole_profile(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    // The most columns ingest takes, with long (150-character) names.
    let columns = shared::ingest::MAX_COLUMNS;
    let header: Vec<String> = (0..columns)
        .map(|i| format!("{}_{i:04}", "wide_column_name".repeat(9)))
        .collect();
    let row = |r: usize| -> String {
        (0..columns)
            .map(|c| format!("{}.5", r * columns + c))
            .collect::<Vec<_>>()
            .join(",")
    };
    let csv = format!("{}\n{}\n{}\n", header.join(","), row(0), row(1));
    let ds = api.upload_csv("wide", &csv).await;
    assert_eq!(ds["columns"].as_array().map(Vec::len), Some(columns));
    let id = ds["dataset_id"].as_str().expect("id");
    let (status, got) = api.get(&format!("/datasets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, ds);
    assert!(
        serde_json::to_vec(&got["columns"]).expect("json").len() > 400 * 1024,
        "the profile must be over the store's item limit for this test to mean anything"
    );
    // A listing reads the blob-held profiles concurrently and keeps the order (newest first).
    let narrow = api.upload_csv("narrow", "a,b\n1,2\n3,4\n").await;
    let wide_again = api.upload_csv("wide-again", &csv).await;
    let (status, list) = api.get("/datasets").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed: Vec<&str> = list["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(listed, ["wide-again", "narrow", "wide"]);
    assert_eq!(list["datasets"][0]["columns"], wide_again["columns"]);
    assert_eq!(list["datasets"][1]["columns"], narrow["columns"]);
    assert_eq!(list["datasets"][2]["columns"], ds["columns"]);
    let last = column(&ds, &header[columns - 1]);
    assert_eq!(last["max"], (2 * columns - 1) as f64 + 0.5);
}

/// A session's URL takes no more than the size it declared (S3 signs the Content-Length; the
/// local server counts), and an account has at most 20 sessions open at once.
async fn upload_sessions_are_bounded(app: &TestApp) {
    let (api, _) = Api::new(app).await;
    let session = create_session(
        &api,
        json!({"name": "s", "format": "csv", "size_bytes": 10}),
    )
    .await;
    let url = session["upload_url"].as_str().expect("url").to_owned();
    match app.backend {
        integration_tests::Backend::Embedded => {
            assert_eq!(
                put_file(&url, b"a,b\n1,2\n3,4\n".to_vec()).await,
                StatusCode::PAYLOAD_TOO_LARGE
            );
            assert!(put_file(&url, b"a,b\n1,2\n3\n".to_vec()).await.is_success());
        }
        // moto does not check signatures: what S3 enforces is in the URL.
        integration_tests::Backend::Aws => {
            assert!(
                url.to_ascii_lowercase().contains("content-length"),
                "the Content-Length is not signed: {url}"
            );
        }
    }
    let mut open = vec![session];
    for _ in 1..20 {
        open.push(create_session(&api, json!({"name": "s", "format": "csv"})).await);
    }
    let (status, body) = api
        .send(
            api.req(reqwest::Method::POST, "/datasets/uploads")
                .json(&json!({"name": "one too many", "format": "csv"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("20 upload sessions open")),
        "{body}"
    );
    // Completing one makes room.
    let last = open.pop().expect("a session");
    assert!(
        put_file(
            last["upload_url"].as_str().expect("url"),
            generated_csv(30).into_bytes()
        )
        .await
        .is_success()
    );
    let (status, body) = api
        .send(api.req(
            reqwest::Method::POST,
            &format!(
                "/datasets/uploads/{}/complete",
                last["upload_id"].as_str().expect("upload_id")
            ),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    create_session(&api, json!({"name": "room again", "format": "csv"})).await;
}
