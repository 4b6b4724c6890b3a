//! Models, builds, deployments and predictions over real HTTP, on both backends: the walk of a
//! user from an upload to predictions and back to a deleted model, the refusals a build gets at
//! once (422 naming candidate columns, 409, 429), and the trainer's faults (a redelivered message
//! trains once; a job that fails every attempt ends ERROR with its reason, and on AWS in the DLQ).

use integration_tests::{Backend, TestApp, http_client, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::accounts::Tier;
use shared::trainer::worker::{self, OnFailure, WorkerOptions};
use shared::trainer::{HANDBACK_MARGIN, Processed, Trainer, TrainerError};
use std::time::{Duration, Instant};

/// A small churn-like table, generated (deterministic) so the test owns its data: a rule over
/// three inputs with a little noise, `id` (dropped as an id) and a categorical `plan`.
fn churn_csv(rows: usize) -> String {
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f64) / ((1u64 << 31) as f64)
    };
    let plans = ["basic", "plus", "premium"];
    let mut out = String::from("id,tenure_months,monthly_charges,plan,churned\n");
    for i in 0..rows {
        let tenure = (next() * 72.0).floor();
        let charges = 20.0 + next() * 100.0;
        let plan = plans[(next() * 3.0) as usize % 3];
        let score = charges / 120.0 - tenure / 72.0 + if plan == "basic" { 0.2 } else { 0.0 };
        let churned = if score + (next() - 0.5) * 0.3 > 0.1 {
            "yes"
        } else {
            "no"
        };
        // A few missing values, as real data has.
        let tenure_text = if i % 37 == 5 {
            String::new()
        } else {
            format!("{tenure}")
        };
        out.push_str(&format!(
            "{},{tenure_text},{charges:.2},{plan},{churned}\n",
            1000 + i
        ));
    }
    out
}

struct Api<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    key: String,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp, tier: Tier) -> Api<'a> {
        let (_, key) = app.account(tier).await;
        Api {
            app,
            client: http_client(),
            key,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.app.at(path))
            .bearer_auth(&self.key)
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = builder.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    async fn upload_csv(&self, name: &str, csv: &str) -> String {
        let (status, body) = self
            .send(
                self.request(reqwest::Method::POST, &format!("/datasets?name={name}"))
                    .header("content-type", "text/csv")
                    .body(csv.to_owned()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["dataset_id"].as_str().expect("dataset_id").to_owned()
    }

    /// Polls the status until it leaves PENDING/BUILDING; returns it and the progress values
    /// seen on the way.
    async fn wait_built(&self, model: &str, version: &str) -> (Value, Vec<u64>) {
        let deadline = Instant::now() + Duration::from_secs(240);
        let mut seen = Vec::new();
        loop {
            let (status, body) = self.get(&format!("/models/{model}/{version}/status")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let progress = body["build_progress"].as_u64().expect("build_progress");
            if seen.last() != Some(&progress) {
                seen.push(progress);
            }
            match body["status"].as_str() {
                Some("READY") | Some("ERROR") => return (body, seen),
                Some("PENDING") | Some("BUILDING") => {}
                other => panic!("unexpected status {other:?}: {body}"),
            }
            assert!(Instant::now() < deadline, "build did not finish: {body}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The in-process trainer for this app (what `plexe serve` runs; on AWS a stand-in for the
/// trainer Lambda's event source, with SQS redelivery semantics).
fn start_trainer(app: &TestApp) -> Vec<tokio::task::JoinHandle<()>> {
    let trainer = Trainer::new(app.state.store.clone(), app.state.blobs.clone());
    worker::spawn(
        trainer,
        app.state.queue.clone(),
        worker_options(app, 120),
        1,
    )
}

fn worker_options(app: &TestApp, visibility_s: u64) -> WorkerOptions {
    match app.backend {
        Backend::Embedded => WorkerOptions {
            retry_delay: Duration::from_millis(100),
            ..WorkerOptions::embedded()
        },
        Backend::Aws => WorkerOptions {
            visibility: Duration::from_secs(visibility_s),
            on_failure: OnFailure::Redeliver,
            retry_delay: Duration::ZERO,
        },
    }
}

struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &self.0 {
            w.abort();
        }
    }
}

const INTENT: &str = "predict whether the customer churned";

fn build_body(dataset_id: &str) -> Value {
    json!({
        "intent": INTENT,
        "dataset_id": dataset_id,
        "time_budget_s": 8,
        "max_iterations": 4,
        "tags": ["test"],
    })
}

fn row(tenure: Value, charges: Value, plan: &str) -> Value {
    json!({"tenure_months": tenure, "monthly_charges": charges, "plan": plan})
}

/// Upload → build from the intent alone → progress → READY → describe → deploy → infer →
/// batch JSON → batch CSV → retrain to v2.0 → versions → undeploy → 409 → delete → 404.
async fn end_to_end(app: &TestApp) {
    let _workers = Workers(start_trainer(app));
    let api = Api::new(app, Tier::Pro).await;
    let csv = churn_csv(300);
    let dataset_id = api.upload_csv("churn", &csv).await;

    // The plan first: what the intent resolves to, and nothing started.
    let (status, plan) = api
        .post("/models/churn/plan", &build_body(&dataset_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["target"], "churned");
    assert_eq!(plan["task"], "binary");
    assert_eq!(plan["labels"], json!(["no", "yes"]));
    assert_eq!(plan["metric"], "accuracy");
    assert_eq!(plan["labelled_rows"], 300);
    let planned: Vec<(&str, bool)> = plan["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["used"].as_bool().unwrap()))
        .collect();
    assert!(planned.contains(&("churned", false)), "{plan}");
    assert!(planned.contains(&("plan", true)), "{plan}");
    let (status, missing) = api.get("/models/churn").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a plan created a model: {missing}"
    );
    let (status, refused) = api
        .post(
            "/models/churn/plan",
            &json!({"intent": "predict the weather", "dataset_id": dataset_id}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]["details"]["candidates"].is_array(),
        "{refused}"
    );

    let (status, created) = api.post("/models/churn", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert!(created["job_id"].as_str().unwrap().starts_with("job_"));
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["model_name"], "churn");
    assert_eq!(created["model_version"], "v1.0");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let job_id = created["job_id"].as_str().unwrap().to_owned();

    let (done, progress) = api.wait_built("churn", "v1.0").await;
    assert_eq!(done["status"], "READY", "{done}");
    assert_eq!(done["build_progress"], 100);
    assert!(
        progress.iter().any(|p| *p > 0 && *p < 100),
        "progress never seen between 0 and 100: {progress:?}"
    );
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(done["result"]["metric_name"], "accuracy");
    let accuracy = done["result"]["metric_value"].as_f64().unwrap();
    assert!(accuracy > 0.7, "holdout accuracy {accuracy}");
    assert!(done["deployment_status"].is_null());

    let (status, model) = api.get("/models/churn").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(model["status"], "READY");
    assert_eq!(model["intent"], INTENT);
    assert_eq!(model["dataset_id"], dataset_id.as_str());
    assert!(model["deployment_status"].is_null());
    assert!(model["metrics"]["accuracy"].is_number(), "{model}");
    assert_eq!(model["tags"], json!(["test"]));
    assert!(model["created_by"].as_str().unwrap().starts_with("key_"));

    let (status, described) = api.get("/models/churn/v1/describe").await;
    assert_eq!(status, StatusCode::OK, "{described}");
    assert_eq!(described["target"], "churned");
    assert_eq!(described["positive_class"], "yes");
    assert!(!described["description"].as_str().unwrap().is_empty());
    let info = &described["training_info"];
    assert!(info["algorithm"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(info["dataset_size"], 300);
    // The holdout's confusion matrix: every held-out row counted once, by actual and predicted.
    let evaluation = &described["evaluation"];
    assert_eq!(evaluation["kind"], "classification", "{evaluation}");
    assert_eq!(evaluation["labels"], json!(["no", "yes"]));
    let cells: Vec<u64> = evaluation["confusion_matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()))
        .collect();
    assert_eq!(cells.len(), 4, "{evaluation}");
    assert_eq!(
        cells.iter().sum::<u64>(),
        info["holdout_rows"].as_u64().unwrap(),
        "{evaluation}"
    );
    let correct = (cells[0] + cells[3]) as f64 / cells.iter().sum::<u64>() as f64;
    assert!(
        (correct - accuracy).abs() < 1e-9,
        "the matrix ({correct}) disagrees with the holdout accuracy ({accuracy})"
    );
    let leaderboard = info["leaderboard"].as_array().unwrap();
    assert!(!leaderboard.is_empty());
    let importance: f64 = info["feature_importance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["importance"].as_f64().unwrap())
        .sum();
    assert!(
        (importance - 1.0).abs() < 1e-6,
        "importance sums to {importance}"
    );
    let inputs: Vec<&str> = described["input_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        inputs.contains(&"tenure_months") && inputs.contains(&"plan"),
        "{inputs:?}"
    );

    let (status, logs) = api
        .get(&format!("/models/build-logs?job_id={job_id}&limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let messages: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    for needle in [
        "loaded",
        "candidate",
        "chosen",
        "holdout",
        "artifact written",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "no log line mentions {needle:?}: {messages:#?}"
        );
    }
    assert!(
        logs["logs"][0]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let (_, page) = api
        .get(&format!(
            "/models/build-logs?job_id={job_id}&limit=2&offset=1"
        ))
        .await;
    assert_eq!(page["logs"].as_array().unwrap().len(), 2);
    assert_eq!(page["logs"][0]["message"], messages[1]);
    assert_eq!(page["pagination"]["total"], messages.len());

    // Not deployed yet: 409 naming the deploy call.
    let features = row(json!(3), json!(110.5), "basic");
    let (status, body) = api.post("/models/churn/v1.0/infer", &features).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deploy")
    );

    let (status, deployment) = api
        .post(
            "/models/churn/deploy",
            &json!({"environment": "production"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");
    assert_eq!(deployment["status"], "ACTIVE");
    assert_eq!(deployment["model_version"], "v1.0");
    assert!(
        deployment["deployment_id"]
            .as_str()
            .unwrap()
            .starts_with("dep_")
    );
    assert_eq!(deployment["replicas"], 1);
    assert_eq!(deployment["auto_scale"], true);

    let (status, inferred) = api.post("/models/churn/v1.0/infer", &features).await;
    assert_eq!(status, StatusCode::OK, "{inferred}");
    assert!(inferred["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(inferred["model_version"], "v1.0");
    let label = inferred["result"]["churned"].as_str().unwrap();
    assert!(label == "yes" || label == "no");
    let p = inferred["result"]["churned_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(label == "yes", p >= 0.5, "{inferred}");
    // A loyal cheap customer and a new expensive one get different answers.
    let (_, loyal) = api
        .post(
            "/models/churn/latest/infer",
            &row(json!(70), json!(21), "premium"),
        )
        .await;
    assert!(
        loyal["result"]["churned_probability"].as_f64().unwrap() < p,
        "{loyal} vs {inferred}"
    );
    // null is a missing value; numeric text is a number.
    let (status, _) = api
        .post(
            "/models/churn/v1/infer",
            &row(Value::Null, json!("99.5"), "plus"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Per-field 422s.
    let (status, body) = api
        .post(
            "/models/churn/v1.0/infer",
            &json!({"monthly_charges": 50, "plan": "basic"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["details"]["errors"][0]["field"],
        "tenure_months"
    );
    let mut unknown = features.clone();
    unknown["colour"] = json!("red");
    let (status, body) = api.post("/models/churn/v1.0/infer", &unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "colour");
    let (status, body) = api
        .post(
            "/models/churn/v1.0/infer",
            &row(json!("long"), json!(1), "basic"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["details"]["errors"][0]["field"],
        "tenure_months"
    );

    // Batch JSON: in order, the same answers as one at a time.
    let batch = json!([
        features,
        row(json!(70), json!(21), "premium"),
        row(json!(12), json!(60), "plus")
    ]);
    let (status, predictions) = api.post("/models/churn/v1.0/predictions", &batch).await;
    assert_eq!(status, StatusCode::OK, "{predictions}");
    let predictions = predictions.as_array().unwrap();
    assert_eq!(predictions.len(), 3);
    assert_eq!(predictions[0]["prediction"], inferred["result"]);
    assert_eq!(predictions[1]["prediction"], loyal["result"]);
    // A bad row is named by its position.
    let bad_batch = json!([features, {"plan": "basic"}]);
    let (status, body) = api.post("/models/churn/v1.0/predictions", &bad_batch).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["errors"][0]["row"], 1);
    let (status, body) = api
        .post("/models/churn/v1.0/predictions", &json!([features, 7]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["errors"][0]["row"], 1);
    assert_eq!(body["error"]["details"]["errors"][0]["field"], "");
    let (status, body) = api.post("/models/churn/v1.0/predictions", &features).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "validation_error", "{body}");
    let too_many = Value::Array(vec![features.clone(); 10_001]);
    let (status, _) = api.post("/models/churn/v1.0/predictions", &too_many).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Batch CSV: the input with the prediction columns appended (the target column the CSV
    // still holds keeps its name; the prediction gets its own).
    let csv_rows: Vec<&str> = csv.lines().take(6).collect();
    let response = api
        .request(reqwest::Method::POST, "/models/churn/v1.0/predictions")
        .header("content-type", "text/csv")
        .body(csv_rows.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let out = response.text().await.unwrap();
    let out_lines: Vec<&str> = out.lines().collect();
    assert_eq!(out_lines.len(), 6, "{out}");
    assert_eq!(
        out_lines[0],
        format!("{},predicted_churned,churned_probability", csv_rows[0])
    );
    for (input, output) in csv_rows[1..].iter().zip(&out_lines[1..]) {
        assert!(
            output.starts_with(input),
            "{output} does not extend {input}"
        );
    }
    // The same through multipart.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(csv_rows.join("\n")).file_name("batch.csv"),
    );
    let response = api
        .request(reqwest::Method::POST, "/models/churn/v1.0/predictions")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), out);

    explanations(&api, &features, &inferred, &csv_rows).await;

    // The artifact is the ONNX file tract serves.
    let response = api
        .request(reqwest::Method::GET, "/models/churn/v1.0/artifact")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let onnx = response.bytes().await.unwrap();
    let loaded = shared::serving::OnnxModel::load(&onnx).expect("artifact loads");
    assert_eq!(loaded.target(), "churned");
    // A row predicts alike before and after a batch of another size, and alike alone or in a
    // batch.
    let alone = loaded.predict_one(&features).expect("predicts a row");
    let batch = loaded
        .predict_json(&vec![features.clone(); 7])
        .expect("predicts a batch");
    assert_eq!(
        loaded.predict_one(&features).expect("predicts again"),
        alone
    );
    assert_eq!(loaded.output_fields(&batch, 6), alone);

    // An artifact larger than an API function can answer on Lambda: on S3 a redirect to a
    // presigned URL that serves the file itself; the embedded folder still answers in place.
    let artifact_key = app_artifact_keys(app, &api, "churn").await.remove(0);
    let big: bytes::Bytes = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    app.state
        .blobs
        .put(&artifact_key, big.clone())
        .await
        .expect("replacing the artifact");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(app.at("/models/churn/v1.0/artifact"))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    let downloaded = match app.backend {
        Backend::Aws => {
            assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            // Signed, and asking S3 to name the file (moto ignores that part; S3 honours it).
            assert!(
                location.contains("X-Amz-Signature=")
                    && location.contains(
                        "response-content-disposition=attachment%3B%20filename%3D%22churn-v1.0.onnx%22"
                    )
                    && !location.starts_with(&app.url),
                "{location}"
            );
            let from_s3 = reqwest::get(&location).await.unwrap();
            assert_eq!(from_s3.status(), StatusCode::OK);
            from_s3.bytes().await.unwrap()
        }
        Backend::Embedded => {
            assert_eq!(response.status(), StatusCode::OK);
            response.bytes().await.unwrap()
        }
    };
    assert!(downloaded == big, "the download is the stored file");
    // A client that follows redirects (reqwest does, dropping the key for the other host)
    // gets the file either way.
    let followed = api
        .request(reqwest::Method::GET, "/models/churn/v1.0/artifact")
        .send()
        .await
        .unwrap();
    assert!(followed.bytes().await.unwrap() == big);
    app.state
        .blobs
        .put(&artifact_key, onnx.clone())
        .await
        .expect("putting the artifact back");

    // Retrain: v2.0, built from the same dataset.
    let (status, retrained) = api.post("/models/churn/retrain", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retrained}");
    assert_eq!(retrained["model_version"], "v2.0");
    let (done, _) = api.wait_built("churn", "v2.0").await;
    assert_eq!(done["status"], "READY", "{done}");
    // Same data, same request: the same model (seeded).
    assert_eq!(done["result"]["metric_value"].as_f64().unwrap(), accuracy);
    // v2.0 is made to look built before explanations were recorded: no pipeline.
    forget_pipeline(app, &api, "churn", 2).await;

    let (status, versions) = api.get("/models/churn/versions").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["model_version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["v2.0", "v1.0"]);
    assert_eq!(versions["pagination"]["total"], 2);
    assert_eq!(versions["versions"][1]["deployment_status"], "DEPLOYED");
    let (_, latest) = api.get("/models/churn/latest").await;
    assert_eq!(latest["model_version"], "v2.0");
    let (_, by_number) = api.get("/models/churn/2").await;
    assert_eq!(by_number["model_version"], "v2.0");

    // Redeploy: production now serves v2.0 and the v1.0 deployment is over.
    let (status, second) = api.post("/models/churn/deploy", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["model_version"], "v2.0");
    let (_, deployments) = api.get("/models/churn/deployments").await;
    let statuses: Vec<(&str, &str)> = deployments["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["model_version"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("v2.0", "ACTIVE"), ("v1.0", "UNDEPLOYED")]);
    let (status, _) = api.post("/models/churn/v1.0/infer", &features).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api.post("/models/churn/v2.0/infer", &features).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .post("/models/churn/v2.0/infer?explain=true", &features)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("built before explanations"),
        "{body}"
    );

    let (_, listed) = api.get("/models?status=READY").await;
    assert_eq!(listed["models"][0]["model_name"], "churn");
    assert_eq!(listed["models"][0]["deployment_status"], "DEPLOYED");
    let (_, none) = api.get("/models?status=ERROR").await;
    assert_eq!(none["pagination"]["total"], 0);

    // Undeploy: predictions stop with 409.
    let dep_id = second["deployment_id"].as_str().unwrap();
    let (status, undeployed) = api
        .delete(&format!("/models/churn/deployments/{dep_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{undeployed}");
    assert_eq!(undeployed["status"], "UNDEPLOYED");
    let (status, _) = api.post("/models/churn/v2.0/infer", &features).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, model) = api.get("/models/churn").await;
    assert!(model["deployment_status"].is_null());

    // Delete: the model, its versions, deployments, logs and artifacts are gone.
    let (_, v1) = api.get("/models/churn/v1.0").await;
    let artifact_keys = app_version_blobs(app, &api, "churn").await;
    let mut stored = 0;
    for key in &artifact_keys {
        stored += usize::from(app.state.blobs.size(key).await.unwrap().is_some());
    }
    assert_eq!(
        stored, 5,
        "v1.0's three files and v2.0's two: {artifact_keys:?}"
    );
    assert!(v1["status"] == "READY");
    let (status, _) = api.delete("/models/churn").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/models/churn",
        "/models/churn/v1.0",
        "/models/churn/deployments",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = api
        .get(&format!("/models/build-logs?job_id={job_id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for key in artifact_keys {
        assert_eq!(app.state.blobs.size(&key).await.unwrap(), None, "{key}");
    }
    // The name is free again, and a build can start from an upload session's file (the
    // session is completed by the build request itself).
    let (status, session) = api
        .post(
            "/datasets/uploads",
            &json!({"name": "churn-upload", "format": "csv", "size_bytes": csv.len()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let put = http_client()
        .put(session["upload_url"].as_str().unwrap())
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let mut body = build_body(&dataset_id);
    body.as_object_mut().unwrap().remove("dataset_id");
    body["upload_id"] = session["upload_id"].clone();
    let (status, created) = api.post("/models/churn", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let (done, _) = api.wait_built("churn", "v1.0").await;
    assert_eq!(done["status"], "READY", "{done}");
    assert_eq!(done["result"]["metric_value"].as_f64().unwrap(), accuracy);
    let (_, model) = api.get("/models/churn").await;
    let from_upload = model["dataset_id"].as_str().unwrap();
    assert!(
        from_upload.starts_with("ds_") && from_upload != dataset_id,
        "{model}"
    );
}

/// `?explain=true`: per row, a base value and each input field's contribution that add up to
/// the raw score (here the log-odds of `yes`, whose sigmoid is the probability served), in
/// `infer`, JSON and CSV batches alike; a loyal customer's tenure lowers the churn score; at
/// most 1,000 rows; a bad flag is a 400.
async fn explanations(api: &Api<'_>, features: &Value, inferred: &Value, csv_rows: &[&str]) {
    let check = |e: &Value, probability: f64| {
        assert_eq!(e["score"], "log_odds", "{e}");
        let scores = e["scores"].as_array().unwrap();
        assert_eq!(scores.len(), 1, "{e}");
        let s = &scores[0];
        assert_eq!(s["label"], "yes");
        let fields: Vec<&str> = s["contributions"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["monthly_charges", "plan", "tenure_months"], "{e}");
        let raw = s["raw_score"].as_f64().unwrap();
        let sum = s["base_value"].as_f64().unwrap()
            + s["contributions"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .sum::<f64>();
        assert!((sum - raw).abs() < 1e-9, "{sum} vs {raw}");
        let p = 1.0 / (1.0 + (-raw).exp());
        assert!(
            (p - probability).abs() < 1e-5,
            "{p} vs served {probability}"
        );
    };
    let (status, explained) = api
        .post("/models/churn/v1.0/infer?explain=true", features)
        .await;
    assert_eq!(status, StatusCode::OK, "{explained}");
    assert_eq!(explained["result"], inferred["result"]);
    let p = inferred["result"]["churned_probability"].as_f64().unwrap();
    check(&explained["explanation"], p);
    // Without the flag there is no explanation.
    assert!(inferred.get("explanation").is_none(), "{inferred}");

    let loyal = row(json!(70), json!(21), "premium");
    let batch = json!([features, loyal]);
    let (status, items) = api
        .post("/models/churn/v1.0/predictions?explain=true", &batch)
        .await;
    assert_eq!(status, StatusCode::OK, "{items}");
    let items = items.as_array().unwrap();
    assert_eq!(items[0]["prediction"], inferred["result"]);
    let (_, plain) = api.post("/models/churn/v1.0/predictions", &batch).await;
    for (item, plain) in items.iter().zip(plain.as_array().unwrap()) {
        assert_eq!(item["prediction"], plain["prediction"]);
        assert!(plain.get("explanation").is_none());
        let p = item["prediction"]["churned_probability"].as_f64().unwrap();
        check(&item["explanation"], p);
    }
    // Churn falls with tenure (the rule the table was made from): 70 months count against it.
    let loyal_tenure = items[1]["explanation"]["scores"][0]["contributions"]["tenure_months"]
        .as_f64()
        .unwrap();
    assert!(loyal_tenure < 0.0, "{}", items[1]);

    // CSV: a base value column and one contribution column per input field.
    let response = api
        .request(
            reqwest::Method::POST,
            "/models/churn/v1.0/predictions?explain=true",
        )
        .header("content-type", "text/csv")
        .body(csv_rows.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let out = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (p_at, base_at) = (at("churned_probability"), at("churned_base_value"));
    let parts: Vec<usize> = ["tenure_months", "monthly_charges", "plan"]
        .iter()
        .map(|f| at(&format!("{f}_contribution")))
        .collect();
    let mut n = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let number = |i: usize| record[i].parse::<f64>().unwrap();
        let raw = number(base_at) + parts.iter().map(|&i| number(i)).sum::<f64>();
        let p = 1.0 / (1.0 + (-raw).exp());
        assert!((p - number(p_at)).abs() < 1e-5, "{record:?}");
        n += 1;
    }
    assert_eq!(n, csv_rows.len() - 1);

    // Bounds and a bad flag.
    let too_many = Value::Array(vec![features.clone(); 1001]);
    let (status, body) = api
        .post("/models/churn/v1.0/predictions?explain=true", &too_many)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["details"]["limit"], 1000);
    let (status, body) = api
        .post(
            "/models/churn/v1.0/predictions?explain=true",
            &Value::Array(vec![features.clone(); 1000]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .post("/models/churn/v1.0/infer?explain=maybe", features)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
}

/// Where each version of a model puts its files (ONNX file, pipeline, metadata), by the key
/// layout rather than by what the version records.
async fn app_version_blobs(app: &TestApp, api: &Api<'_>, model: &str) -> Vec<String> {
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap();
    shared::domain::models::list_versions(
        app.state.store.as_ref(),
        account_id,
        &shared::domain::layout::ModelName::new(model).expect("model name"),
    )
    .await
    .unwrap()
    .iter()
    .flat_map(|v| {
        let keys = shared::domain::models::artifact_keys(account_id, v);
        [keys.onnx, keys.pipeline, keys.metadata]
    })
    .collect()
}

/// Makes a version look built before pipelines were stored: its record names none and the
/// file is gone.
async fn forget_pipeline(app: &TestApp, api: &Api<'_>, model: &str, number: u32) {
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap();
    let store = app.state.store.as_ref();
    let name = shared::domain::layout::ModelName::new(model).expect("model name");
    let mut version = shared::domain::models::list_versions(store, account_id, &name)
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.number == number)
        .expect("the version");
    let trained = version.trained.as_mut().expect("built");
    let key = trained.pipeline_key.take().expect("a pipeline");
    app.state.blobs.delete(&key).await.unwrap();
    shared::domain::models::put_version(store, account_id, &version)
        .await
        .unwrap();
}

/// The artifact keys of a model's versions, read from the store as the server wrote them.
async fn app_artifact_keys(app: &TestApp, api: &Api<'_>, model: &str) -> Vec<String> {
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap();
    shared::domain::models::list_versions(
        app.state.store.as_ref(),
        account_id,
        &shared::domain::layout::ModelName::new(model).expect("model name"),
    )
    .await
    .unwrap()
    .iter()
    .filter_map(|v| v.trained.as_ref().map(|t| t.artifact_key.clone()))
    .collect()
}

/// Refused at once: unknown target (422 naming the columns), missing dataset (404), a name
/// taken (409), bad names and bodies; and the concurrent-build limit (429).
async fn builds_are_refused_at_once(app: &TestApp) {
    let api = Api::new(app, Tier::Basic).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(60)).await;

    let (status, body) = api
        .post(
            "/models/m1",
            &json!({"intent": "forecast the weather", "dataset_id": dataset_id}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "validation_error");
    let candidates = body["error"]["details"]["candidates"].as_array().unwrap();
    assert!(candidates.contains(&json!("churned")), "{body}");
    let (status, body) = api
        .post(
            "/models/m1",
            &json!({"intent": "x", "dataset_id": dataset_id, "target": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = api
        .post(
            "/models/m1",
            &json!({"intent": INTENT, "dataset_id": "ds_00000000000000000000000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = api
        .post("/models/m1", &json!({"dataset_id": dataset_id}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .post("/models/Bad%20Name", &build_body(&dataset_id))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api
        .post(
            "/models/m1",
            &json!({"intent": INTENT, "dataset_id": dataset_id, "metric": "rmse"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was written by the refusals.
    let (_, listed) = api.get("/models").await;
    assert_eq!(listed["pagination"]["total"], 0);

    // No trainer runs here, so builds stay in flight: basic allows 2.
    let (status, _) = api.post("/models/m1", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = api.post("/models/m1", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = api.post("/models/m2", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = api.post("/models/m3", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "concurrency_limit_exceeded");
    let (status, body) = api
        .get("/models?status=PENDING&sort_by=name&sort_dir=desc")
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m2", "m1"]);
    let (status, _) = api.get("/models?sort_by=size").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Deleting a model cancels its build and frees the slot.
    let (status, _) = api.delete("/models/m1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api.post("/models/m3", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Not READY: no deploy, no describe.
    let (status, _) = api.post("/models/m3/deploy", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/models/m3/v1.0/describe").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = api
        .post("/models/m3/deploy", &json!({"model_version": "v1.0"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Another account sees none of it.
    let other = Api::new(app, Tier::Pro).await;
    let (status, _) = other.get("/models/m3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The job message of the only build queued so far.
async fn take_message(app: &TestApp) -> shared::ports::QueueMessage {
    let messages = app
        .state
        .queue
        .receive(1, Duration::from_secs(300), Duration::from_secs(5))
        .await
        .expect("receive");
    messages.into_iter().next().expect("a job message")
}

/// A trainer invocation near its deadline: with too little time left it hands the build back
/// without training (PENDING, the attempt counted); with some time left it cuts the time
/// budget to fit and finishes before the deadline.
async fn builds_fit_the_invocations_time(app: &TestApp) {
    let api = Api::new(app, Tier::Pro).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(200)).await;
    let mut body = build_body(&dataset_id);
    body["time_budget_s"] = json!(60);
    let (status, created) = api.post("/models/timed", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let job_id = created["job_id"].as_str().unwrap().to_owned();
    let message = take_message(app).await;
    let trainer = Trainer::new(app.state.store.clone(), app.state.blobs.clone());

    let started = Instant::now();
    let short = tokio::time::Instant::now() + Duration::from_secs(8);
    let handed_back = trainer.process_before(&message.body, Some(short)).await;
    assert!(
        matches!(
            handed_back,
            Err(TrainerError::OutOfTime {
                final_attempt: false
            })
        ),
        "{handed_back:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it did not train"
    );
    let (_, s) = api.get("/models/timed/v1.0/status").await;
    assert_eq!(s["status"], "PENDING", "{s}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(24);
    let built = trainer.process_before(&message.body, Some(deadline)).await;
    assert!(matches!(built, Ok(Processed::Built)), "{built:?}");
    assert!(
        tokio::time::Instant::now() + HANDBACK_MARGIN <= deadline,
        "the build ended before the hand-back margin"
    );
    let (_, s) = api.get("/models/timed/v1.0/status").await;
    assert_eq!(s["status"], "READY", "{s}");
    let (_, logs) = api
        .get(&format!("/models/build-logs?job_id={job_id}&limit=100"))
        .await;
    let text = logs.to_string();
    assert!(text.contains("too little time left"), "{logs}");
    assert!(text.contains("time budget cut from 60s to "), "{logs}");
}

/// Two deliveries of one message, the second while the first is building: one training.
async fn redelivery_trains_once(app: &TestApp) {
    let api = Api::new(app, Tier::Pro).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(200)).await;
    let (status, created) = api.post("/models/once", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job_id = created["job_id"].as_str().unwrap().to_owned();
    let message = take_message(app).await;

    let first = Trainer::new(app.state.store.clone(), app.state.blobs.clone());
    let second = Trainer::new(app.state.store.clone(), app.state.blobs.clone());
    let body = message.body.clone();
    let running = tokio::spawn(async move { first.process(&body).await });
    // Wait for the first claim to take hold.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, s) = api.get("/models/once/v1.0/status").await;
        if s["status"] == "BUILDING" {
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let duplicate = match app.backend {
        // The Lambda handler, with the SQS event the redelivery would bring.
        Backend::Aws => {
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(json!({
                "Records": [{"messageId": message.id, "body": message.body}]
            }))
            .unwrap();
            let response = shared::runtime::lambda::handle_sqs_batch(
                &second,
                app.state.queue.as_ref(),
                event,
                None,
            )
            .await;
            assert!(
                response.batch_item_failures.is_empty(),
                "the redelivery was reported failed"
            );
            None
        }
        Backend::Embedded => Some(second.process(&message.body).await),
    };
    let first = running.await.unwrap();
    assert!(matches!(first, Ok(Processed::Built)), "{first:?}");
    if let Some(duplicate) = duplicate {
        assert!(
            matches!(duplicate, Ok(Processed::AlreadyFinished)),
            "{duplicate:?}"
        );
    }
    // And a later redelivery, after the job ended, is a no-op too.
    assert!(matches!(
        second.process(&message.body).await,
        Ok(Processed::AlreadyFinished)
    ));
    let (_, logs) = api
        .get(&format!("/models/build-logs?job_id={job_id}&limit=100"))
        .await;
    let starts = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"].as_str().unwrap().contains("started"))
        .count();
    assert_eq!(starts, 1, "{logs}");
    let (_, status) = api.get("/models/once/v1.0/status").await;
    assert_eq!(status["status"], "READY");
}

/// A job whose every attempt fails (its dataset's stored file is damaged after the build was
/// accepted) ends ERROR with the reason after the last attempt; on AWS its message is in the
/// dead-letter queue.
async fn failing_job_ends_in_error(app: &TestApp) {
    let api = Api::new(app, Tier::Pro).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(100)).await;
    let (status, created) = api.post("/models/doomed", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job_id = created["job_id"].as_str().unwrap().to_owned();
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap();
    let dataset = shared::domain::datasets::get_dataset(
        app.state.store.as_ref(),
        app.state.blobs.as_ref(),
        account_id,
        &dataset_id,
    )
    .await
    .unwrap();
    app.state
        .blobs
        .put(
            &dataset.data_key(),
            bytes::Bytes::from_static(b"a,b\n\xff\xfe,1\n1\n"),
        )
        .await
        .unwrap();

    let trainer = Trainer::new(app.state.store.clone(), app.state.blobs.clone());
    let _workers = Workers(worker::spawn(
        trainer,
        app.state.queue.clone(),
        worker_options(app, 1),
        1,
    ));
    let (done, _) = api.wait_built("doomed", "v1.0").await;
    assert_eq!(done["status"], "ERROR", "{done}");
    assert_eq!(done["error"]["code"], "build_failed");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.contains("failed 3 times"), "{message}");
    assert!(
        message.contains(&dataset_id),
        "the reason names the dataset: {message}"
    );
    let (_, logs) = api
        .get(&format!("/models/build-logs?job_id={job_id}&limit=100"))
        .await;
    let retries = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"].as_str().unwrap().contains("will be retried"))
        .count();
    assert_eq!(retries, 2, "{logs}");
    if app.backend == Backend::Aws {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let dead = app.state.queue.dead_letters(10).await.unwrap();
            if dead.iter().any(|m| m.body.contains(&job_id)) {
                break;
            }
            assert!(Instant::now() < deadline, "the job never reached the DLQ");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The slot was given back: the account can build again (from sound data).
    let fresh = api.upload_csv("fresh", &churn_csv(100)).await;
    let (status, body) = api
        .post("/models/doomed/retrain", &json!({"dataset_id": fresh}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

/// `GET /openapi.json` needs no key, and every operation it lists is routed by the server
/// (the unit test in `http::routes::openapi` checks the other direction from the source).
async fn openapi_lists_routed_operations(app: &TestApp) {
    let client = http_client();
    let doc: Value = client
        .get(app.at("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let api = Api::new(app, Tier::Pro).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/models/{model_name}/{model_version}/infer"));
    for (path, operations) in paths {
        // On AWS uploads go to S3: this server answers its own upload URL with a 404.
        if path.starts_with("/uploads/") && app.backend == Backend::Aws {
            continue;
        }
        let concrete = path
            .replace("{model_name}", "nomodel")
            .replace("{model_version}", "v1")
            .replace("{deployment_id}", "dep_x")
            .replace("{key_id}", "key_x")
            .replace("{dataset_id}", "ds_x")
            .replace("{upload_id}", "upl_x")
            .replace("{token}", "t");
        for method in operations.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let (status, body) = api
                .send(api.request(method.clone(), &concrete).json(&json!({})))
                .await;
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND
                    && body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("No route matches")));
            assert!(
                !unrouted,
                "{method} {path} is documented but not routed: {body}"
            );
        }
    }
}

/// Deleting a model while its build runs cancels the build: the trainer finds its claim gone,
/// writes nothing back and removes the artifact it may have stored.
async fn deleting_cancels_a_running_build(app: &TestApp) {
    let api = Api::new(app, Tier::Pro).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(3000)).await;
    let mut body = build_body(&dataset_id);
    body["time_budget_s"] = json!(20);
    body.as_object_mut().unwrap().remove("max_iterations");
    let (status, _) = api.post("/models/doomed", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap().to_owned();
    let versions = shared::domain::models::list_versions(
        app.state.store.as_ref(),
        &account_id,
        &shared::domain::layout::ModelName::new("doomed").expect("model name"),
    )
    .await
    .unwrap();
    let version_id = versions[0].version_id.clone();
    let message = take_message(app).await;
    let trainer = Trainer::new(app.state.store.clone(), app.state.blobs.clone());
    let running = tokio::spawn(async move { trainer.process(&message.body).await });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, s) = api.get("/models/doomed/v1.0/status").await;
        if s["status"] == "BUILDING" {
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = api.delete("/models/doomed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcome = running.await.unwrap();
    assert!(matches!(outcome, Ok(Processed::Cancelled)), "{outcome:?}");
    let (status, _) = api.get("/models/doomed/v1.0/status").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let left = shared::domain::models::list_versions(
        app.state.store.as_ref(),
        &account_id,
        &shared::domain::layout::ModelName::new("doomed").expect("model name"),
    )
    .await
    .unwrap();
    assert!(
        left.is_empty(),
        "a cancelled build wrote its version back: {left:?}"
    );
    let artifact = format!("models/{account_id}/doomed/{version_id}/model.onnx");
    assert_eq!(app.state.blobs.size(&artifact).await.unwrap(), None);
}

/// Metered tiers start at most 5 builds a minute: the 6th is 429 `rate_limit_exceeded` with
/// `Retry-After`, even though build slots are free (pro allows 10 at a time).
async fn builds_per_minute_are_limited(app: &TestApp) {
    let api = Api::new(app, Tier::Pro).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(60)).await;
    // Stay inside one minute window: start early in a minute.
    let second = shared::ids::now_epoch().rem_euclid(60);
    if second > 45 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
    for i in 0..5 {
        let (status, body) = api
            .post(&format!("/models/rate{i}"), &build_body(&dataset_id))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let response = api
        .request(reqwest::Method::POST, "/models/rate5")
        .json(&build_body(&dataset_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    // Nothing of the refused build was written.
    let (status, _) = api.get("/models/rate5").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A build whose worker vanished and whose message never comes back (dead-lettered) does not
/// stay BUILDING forever: once its job has shown no sign of life for 3 hours, reading the
/// version ends it as ERROR with the reason, and its build slot is free again.
async fn abandoned_builds_end_in_error(app: &TestApp) {
    let api = Api::new(app, Tier::Basic).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(60)).await;
    let (status, created) = api.post("/models/lost", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job_id = created["job_id"].as_str().unwrap();
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap();
    let store = app.state.store.as_ref();
    use shared::domain::models::jobs;
    // A worker claimed it (BUILDING) and died 4 hours ago.
    let claim = jobs::claim_job(store, account_id, job_id, "wrk_gone")
        .await
        .unwrap();
    let jobs::Claim::Claimed { mut job, rev } = claim else {
        panic!("{claim:?}");
    };
    let mut version = shared::domain::models::get_version(
        store,
        account_id,
        &shared::domain::layout::ModelName::new("lost").expect("model name"),
        1,
    )
    .await
    .unwrap()
    .unwrap();
    version.status = shared::domain::models::VersionStatus::Building;
    shared::domain::models::put_version(store, account_id, &version)
        .await
        .unwrap();
    let (_, fresh) = api.get("/models/lost/v1.0/status").await;
    assert_eq!(
        fresh["status"], "BUILDING",
        "a live build is left alone: {fresh}"
    );
    let long_ago = shared::ids::now_epoch() - 4 * 3600;
    job.lease_until = long_ago;
    job.touched_at = long_ago;
    store
        .put(
            jobs::job_item(&job).unwrap(),
            shared::ports::Condition::Revision(rev),
        )
        .await
        .unwrap();

    let (status, s) = api.get("/models/lost/v1.0/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["status"], "ERROR", "{s}");
    assert_eq!(s["error"]["code"], "build_interrupted");
    let (_, model) = api.get("/models/lost").await;
    assert_eq!(model["status"], "ERROR");
    // Basic has 2 slots: the abandoned build's is free again.
    for name in ["next1", "next2"] {
        let (status, body) = api
            .post(&format!("/models/{name}"), &build_body(&dataset_id))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
}

on_both_backends!(
    abandoned_builds_end_in_error,
    builds_fit_the_invocations_time,
    changes_made_elsewhere_are_served_within_a_second,
    a_build_cut_off_mid_request_is_queued_or_not_written,
    builds_per_minute_are_limited,
    deleting_cancels_a_running_build,
    openapi_lists_routed_operations,
    end_to_end,
    builds_are_refused_at_once,
    redelivery_trains_once,
    failing_job_ends_in_error,
    every_field_is_bounded,
    builds_on_many_long_columns_stay_within_item_limits,
    prediction_jobs_predict_a_whole_csv,
);

/// A CSV PUT to an upload session (not completed), as a client sends a file over the body limit.
async fn stage_csv(api: &Api<'_>, csv: &str) -> String {
    let (status, session) = api
        .post(
            "/datasets/uploads",
            &json!({"name": "inputs", "format": "csv", "size_bytes": csv.len()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let put = http_client()
        .put(session["upload_url"].as_str().unwrap())
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    session["upload_id"].as_str().unwrap().to_owned()
}

/// Polls a prediction job until it has finished.
async fn wait_job(api: &Api<'_>, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, job) = api.get(location).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["status"] == "SUCCEEDED" || job["status"] == "FAILED" {
            return job;
        }
        assert!(Instant::now() < deadline, "job still {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A CSV over the batch limit (25,000 rows) is predicted by a job on the task worker: created
/// for the deployed version from an upload session, polled, its result the same CSV with the
/// prediction columns that `POST .../predictions` appends, row for row. A row that does not
/// fit fails the job naming its rows; wrong inputs are refused at once.
async fn prediction_jobs_predict_a_whole_csv(app: &TestApp) {
    let _workers = Workers(start_trainer(app));
    let tasks = Workers(shared::domain::tasks::spawn_workers(
        app.state
            .tasks
            .clone()
            .expect("a task queue on both backends"),
        app.state.store.clone(),
        app.state.blobs.clone(),
        1,
    ));
    let api = Api::new(app, Tier::Enterprise).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(300)).await;
    let (status, created) = api.post("/models/churn", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let (done, _) = api.wait_built("churn", "v1.0").await;
    assert_eq!(done["status"], "READY", "{done}");

    let inputs = churn_csv(25_000);
    let upload_id = stage_csv(&api, &inputs).await;
    let jobs = "/models/churn/v1.0/prediction-jobs";
    let (status, refused) = api.post(jobs, &json!({"upload_id": upload_id})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not deployed: {refused}");
    let (status, deployment) = api.post("/models/churn/deploy", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployment}");

    for (body, expected) in [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"upload_id": upload_id, "dataset_id": dataset_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"upload_id": "upl_nope"}), StatusCode::NOT_FOUND),
        (
            json!({"upload": upload_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, refused) = api.post(jobs, &body).await;
        assert_eq!(status, expected, "{body}: {refused}");
        assert!(refused["error"]["message"].is_string(), "{refused}");
    }

    let response = api
        .request(reqwest::Method::POST, jobs)
        .json(&json!({"upload_id": upload_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["status"], "QUEUED", "{queued}");
    assert!(queued["job_id"].as_str().unwrap().starts_with("job_"));
    assert_eq!(
        location,
        format!("{jobs}/{}", queued["job_id"].as_str().unwrap())
    );

    let job = wait_job(&api, &location).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["rows"], 25_000);
    assert_eq!(job["upload_id"], upload_id.as_str());
    let result_url = job["result_url"].as_str().unwrap().to_owned();
    assert_eq!(result_url, format!("{location}/result"));
    let result = api
        .request(reqwest::Method::GET, &result_url)
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), StatusCode::OK);
    let result = result.text().await.unwrap();
    assert_eq!(job["result_bytes"], result.len());
    let lines: Vec<&str> = result.lines().collect();
    assert_eq!(lines.len(), 25_001);
    // The first rows as the synchronous route predicts them.
    let head: Vec<&str> = inputs.lines().take(6).collect();
    let sync = api
        .request(reqwest::Method::POST, "/models/churn/v1.0/predictions")
        .header("content-type", "text/csv")
        .body(head.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), StatusCode::OK);
    let sync = sync.text().await.unwrap();
    assert_eq!(sync.lines().collect::<Vec<_>>(), lines[..6].to_vec());
    // And the last row is the input's last row, predicted.
    assert!(lines[25_000].starts_with(inputs.lines().last().unwrap()));

    // Another account sees no such job.
    let other = Api::new(app, Tier::Enterprise).await;
    let (status, _) = other.get(&location).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A row that does not fit (a text where a number belongs, past the first batch) fails the
    // job, naming its rows; no result is served.
    let mut bad = churn_csv(12_000);
    bad.push_str("99999,not-a-number,50.0,basic,no\n");
    let upload_id = stage_csv(&api, &bad).await;
    let (status, queued) = api.post(jobs, &json!({"upload_id": upload_id})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let failed = wait_job(
        &api,
        &format!("{jobs}/{}", queued["job_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("10001") && error.contains("tenure_months"),
        "{error}"
    );
    let (status, refused) = api
        .get(&format!(
            "{jobs}/{}/result",
            failed["job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");

    // A key that may only predict cannot have a dataset read back through a job's result.
    let (status, issued) = api
        .post(
            "/api-keys",
            &json!({"name": "predictor", "scopes": ["predict"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let predictor = Api {
        app,
        client: http_client(),
        key: issued["api_key"].as_str().unwrap().to_owned(),
    };
    let (status, refused) = predictor
        .post(jobs, &json!({"dataset_id": dataset_id}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'read'"),
        "{refused}"
    );

    // A delivery that finds the job held by a live worker comes back after the lease instead
    // of being dropped; a job whose workers kept dying fails saying so.
    use shared::domain::prediction_jobs::{self, JobRunError, PredictionJob, PredictionJobStatus};
    let (_, me) = api.get("/me").await;
    let account_id = me["account_id"].as_str().unwrap();
    let store = app.state.store.as_ref();
    let job_id = failed["job_id"].as_str().unwrap();
    let item = store
        .get(
            &shared::domain::account_pk(account_id),
            &shared::domain::layout::prediction_job_sk(job_id),
        )
        .await
        .unwrap()
        .expect("the job's item");
    let mut held: PredictionJob = serde_json::from_value(item.data.clone()).unwrap();
    held.status = PredictionJobStatus::Running;
    held.running_since = Some(shared::ids::now_epoch());
    held.attempts = 1;
    held.error = None;
    let put = |job: &PredictionJob, rev: u64| {
        let mut item = shared::ports::Item::new(
            item.pk.clone(),
            item.sk.clone(),
            serde_json::to_value(job).unwrap(),
        );
        item.expires_at = Some(shared::ids::now_epoch() + 3600);
        store.put(item, shared::ports::Condition::Revision(rev))
    };
    let rev = put(&held, item.rev).await.unwrap();
    let run = prediction_jobs::run_job(store, app.state.blobs.as_ref(), account_id, job_id).await;
    let Err(JobRunError::Busy { retry_after }) = run else {
        panic!("a held job was run or dropped: {run:?}");
    };
    assert!(
        retry_after <= Duration::from_secs(15 * 60 + 1),
        "{retry_after:?}"
    );
    held.running_since = Some(shared::ids::now_epoch() - 16 * 60);
    held.attempts = prediction_jobs::MAX_JOB_ATTEMPTS;
    put(&held, rev).await.unwrap();
    let run = prediction_jobs::run_job(store, app.state.blobs.as_ref(), account_id, job_id).await;
    assert!(
        matches!(
            run,
            Ok(prediction_jobs::JobRun::Finished(
                PredictionJobStatus::Failed
            ))
        ),
        "{run:?}"
    );
    let (_, ended) = api.get(&format!("{jobs}/{job_id}")).await;
    assert_eq!(ended["status"], "FAILED", "{ended}");
    assert!(
        ended["error"].as_str().unwrap().contains("split the input"),
        "{ended}"
    );

    // An account has at most MAX_ACTIVE_JOBS jobs queued or running: with the task worker
    // stopped, the next one is refused (and not queued) until one ends.
    drop(tasks);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..prediction_jobs::MAX_ACTIVE_JOBS {
        let (status, queued) = api.post(jobs, &json!({"dataset_id": dataset_id})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        assert_eq!(queued["status"], "QUEUED", "{queued}");
    }
    let (status, refused) = api.post(jobs, &json!({"dataset_id": dataset_id})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("wait for one to finish"), "{refused}");
    let queued = app
        .state
        .store
        .query(
            &shared::domain::account_pk(account_id),
            shared::domain::layout::PREDICTION_JOB_PREFIX,
            true,
            1000,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        queued.items.len(),
        prediction_jobs::MAX_ACTIVE_JOBS + 2,
        "the refused job was stored"
    );
}

/// Every string and list a user writes into a record has a bound, refused with a 422 naming
/// the field, on both backends (DynamoDB items stop at 400 KB).
async fn every_field_is_bounded(app: &TestApp) {
    let api = Api::new(app, Tier::Enterprise).await;
    let dataset_id = api.upload_csv("bounded", &churn_csv(60)).await;
    let base = build_body(&dataset_id);
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let big_schema: serde_json::Map<String, Value> = (0..3000)
        .map(|i| (format!("field_{i:05}_{}", "x".repeat(10)), json!("float")))
        .collect();
    for (field, body) in [
        ("description", with("description", json!("d".repeat(2001)))),
        ("name", with("name", json!("n".repeat(201)))),
        (
            "tags",
            with(
                "tags",
                json!((0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
        ),
        ("tags", with("tags", json!(["v".repeat(257)]))),
        ("tags", with("tags", json!({ "k".repeat(65): "v" }))),
        (
            "input_schema",
            with("input_schema", Value::Object(big_schema.clone())),
        ),
        (
            "output_schema",
            with("output_schema", Value::Object(big_schema)),
        ),
        ("target", with("target", json!("t".repeat(300)))),
        ("metric", with("metric", json!("m".repeat(100)))),
        ("intent", with("intent", json!("i".repeat(2001)))),
    ] {
        let (status, answer) = api.post("/models/bounded", &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {answer}"
        );
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        assert!(
            answer.to_string().len() < 4096,
            "the refusal echoes the input back: {} bytes",
            answer.to_string().len()
        );
    }
    // A column name over 256 characters is refused at upload, naming its column.
    let header = format!("a,{},c\n1,2,3\n4,5,6\n", "b".repeat(257));
    let (status, answer) = api
        .send(
            api.request(reqwest::Method::POST, "/datasets?name=long")
                .header("content-type", "text/csv")
                .body(header),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"]["column"], 2, "{answer}");
    // Within the bounds, the model is created.
    let (status, answer) = api
        .post(
            "/models/bounded",
            &with("description", json!("d".repeat(2000))),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

/// A build on hundreds of long-named columns produces a build record larger than a store item
/// may be: the version keeps its bulky parts in the metadata blob and every read still shows
/// them whole.
async fn builds_on_many_long_columns_stay_within_item_limits(app: &TestApp) {
    let _workers = Workers(start_trainer(app));
    let api = Api::new(app, Tier::Enterprise).await;
    let columns = 800;
    let names: Vec<String> = (0..columns)
        .map(|i| format!("{i:04}_{}", "c".repeat(240)))
        .collect();
    let mut csv = names.join(",");
    csv.push_str(",label\n");
    for r in 0..40u32 {
        let row: Vec<String> = (0..columns as u32)
            .map(|c| ((r * 7 + c) % 13).to_string())
            .collect();
        csv.push_str(&row.join(","));
        csv.push_str(if r % 2 == 0 { ",yes\n" } else { ",no\n" });
    }
    let dataset_id = api.upload_csv("wide", &csv).await;
    let (status, created) = api
        .post(
            "/models/wide",
            &json!({"intent": "predict label", "dataset_id": dataset_id, "time_budget_s": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let (done, _) = api.wait_built("wide", "v1.0").await;
    assert_eq!(done["status"], "READY", "{done}");
    let (status, described) = api.get("/models/wide/v1/describe").await;
    assert_eq!(status, StatusCode::OK, "{described}");
    assert_eq!(
        described["input_schema"].as_array().map(Vec::len),
        Some(columns),
        "the input schema was not restored whole"
    );
    let (_, model) = api.get("/models/wide").await;
    assert_eq!(
        model["input_schema"].as_array().map(Vec::len),
        Some(columns)
    );
    let (_, versions) = api.get("/models/wide/versions").await;
    assert_eq!(
        versions["versions"][0]["input_schema"]
            .as_array()
            .map(Vec::len),
        Some(columns)
    );
}

/// Clients that send a build and hang up at once (after 0 to 127 ms, so before, during and after
/// the server's writes on either backend) leave no build written but never queued: every version that exists has
/// its job on the queue, and none is stuck PENDING with nothing to run it.
async fn a_build_cut_off_mid_request_is_queued_or_not_written(app: &TestApp) {
    use tokio::io::AsyncWriteExt;
    let api = Api::new(app, Tier::Enterprise).await;
    let dataset_id = api.upload_csv("churn", &churn_csv(120)).await;
    let addr = app.url.trim_start_matches("http://");
    let names: Vec<String> = (0..8).map(|i| format!("cut{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let body = build_body(&dataset_id).to_string();
        let request = format!(
            "POST /models/{name} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            api.key,
            body.len()
        );
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        socket.write_all(request.as_bytes()).await.expect("send");
        socket.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis((1u64 << i) - 1)).await;
        drop(socket);
    }

    // Every written version's job reaches the queue; a build cut between its write and its
    // enqueue would stay PENDING with no message, and this would time out.
    let mut queued = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for message in app
            .state
            .queue
            .receive(10, Duration::from_secs(600), Duration::from_millis(200))
            .await
            .expect("receive")
        {
            let body: Value = serde_json::from_str(&message.body).expect("job message");
            queued.insert(body["job_id"].as_str().expect("job_id").to_owned());
        }
        let mut written = Vec::new();
        for name in &names {
            let (status, body) = api.get(&format!("/models/{name}/versions")).await;
            if status == StatusCode::NOT_FOUND {
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            for version in body["versions"].as_array().expect("versions") {
                assert_eq!(version["status"], "PENDING", "{version}");
                written.push(version["job_id"].as_str().expect("job_id").to_owned());
            }
        }
        let unqueued: Vec<&String> = written.iter().filter(|j| !queued.contains(*j)).collect();
        if !written.is_empty() && unqueued.is_empty() {
            assert_eq!(
                queued.len(),
                written.len(),
                "a message for each build, no more"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "builds written but never queued: {unqueued:?} (written {written:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The caches of a serving process ([`shared::http::lookups`]) see a change made by another
/// process within their TTL of one second: a version undeployed there stops being served here,
/// a key whose scopes were cut in the store is refused the scope, a key revoked there is
/// refused. A new deployment made there is served here at once (an absence is never cached).
async fn changes_made_elsewhere_are_served_within_a_second(app: &TestApp) {
    use shared::domain::layout::{API_KEY_LOOKUP_SK, api_key_lookup_pk};
    use shared::http::lookups::LOOKUP_TTL;
    let _workers = Workers(start_trainer(app));
    let api = Api::new(app, Tier::Enterprise).await;
    let dataset_id = api.upload_csv("stale", &churn_csv(200)).await;
    let (status, created) = api.post("/models/stale", &build_body(&dataset_id)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let (done, _) = api.wait_built("stale", "v1.0").await;
    assert_eq!(done["status"], "READY", "{done}");
    let (status, deployed) = api.post("/models/stale/deploy", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    let deployment_id = deployed["deployment_id"].as_str().expect("deployment_id");
    let (status, key) = api
        .post(
            "/api-keys",
            &json!({"name": "predictor", "scopes": ["predict"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["api_key"].as_str().expect("api_key").to_owned();
    let key_id = key["key_id"].as_str().expect("key_id").to_owned();

    let other = app.another_process().await;
    let client = http_client();
    let infer = |base: String| {
        let client = client.clone();
        let secret = secret.clone();
        async move {
            let response = client
                .post(format!("{base}/models/stale/v1/infer"))
                .bearer_auth(&secret)
                .json(&row(json!(12), json!(70.0), "basic"))
                .send()
                .await
                .expect("infer");
            let status = response.status();
            (status, response.text().await.unwrap_or_default())
        }
    };
    let (status, body) = infer(app.url.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Undeployed by the other process: refused here once the TTL has passed.
    let (status, body) = api
        .send(
            api.client
                .delete(format!(
                    "{}/models/stale/deployments/{deployment_id}",
                    other.url
                ))
                .bearer_auth(&api.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(LOOKUP_TTL).await;
    let (status, body) = infer(app.url.clone()).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an undeployed version was still served: {body}"
    );

    // Deployed again by the other process: served here at once.
    let (status, body) = api
        .send(
            api.client
                .post(format!("{}/models/stale/deploy", other.url))
                .bearer_auth(&api.key)
                .json(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = infer(app.url.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The key's scopes cut in the store (as an operator's tool would): refused the scope.
    let store = app.state.store.as_ref();
    let pk = api_key_lookup_pk(&key_id);
    let mut item = store
        .get(&pk, API_KEY_LOOKUP_SK)
        .await
        .expect("reading the key")
        .expect("the key's item");
    item.data["scopes"] = json!(["read"]);
    store
        .put(item, shared::ports::Condition::Exists)
        .await
        .expect("rewriting the key");
    tokio::time::sleep(LOOKUP_TTL).await;
    let (status, body) = infer(app.url.clone()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a revoked scope was still granted: {body}"
    );

    // Revoked by the other process: refused here.
    let (status, body) = api
        .send(
            api.client
                .delete(format!("{}/api-keys/{key_id}", other.url))
                .bearer_auth(&api.key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(LOOKUP_TTL).await;
    let (status, body) = infer(app.url.clone()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked key was still accepted: {body}"
    );
}
