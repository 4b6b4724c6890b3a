//! Lambda-shaped tests: each function's real release binary runs against an emulator of the
//! Lambda Runtime API (tests/support/runtime_api.rs), receives API Gateway HTTP API (payload
//! 2.0) events and SQS events exactly as on AWS, and talks to DynamoDB/S3/SQS on moto.

use integration_tests::lambda_stack::{
    self, Function, admin_key, assert_envelope, function_binary,
};
use integration_tests::runtime_api::Outcome;
use integration_tests::{AwsBackends, aws_backends};
use serde_json::{Value, json};
use std::time::Duration;

async fn start(binary: &str, name: &str, aws: &AwsBackends) -> Function {
    lambda_stack::start_function(binary, name, &lambda_stack::function_env(aws)).await
}

/// A direct CSV upload of `rows` houses (size, rooms, price) to `path` through the datasets
/// function; returns the dataset.
async fn upload_houses(datasets: &Function, bearer: &str, path: &str, rows: u32) -> Value {
    let mut csv = String::from("size,rooms,price\n");
    for i in 0..rows {
        csv.push_str(&format!("{},{},{}\n", 40 + i, 1 + i % 4, 1000 + 25 * i));
    }
    let uploaded = datasets
        .http(
            "POST",
            path,
            &[("authorization", bearer), ("content-type", "text/csv")],
            Some(csv.as_bytes()),
        )
        .await;
    assert_eq!(
        uploaded.status,
        201,
        "{}",
        String::from_utf8_lossy(&uploaded.body)
    );
    uploaded.json()
}

#[tokio::test]
async fn datasets_models_and_inference_functions_serve_their_groups() {
    let Some(aws) = aws_backends("lambda-groups").await else {
        return;
    };
    let key = admin_key(&aws).await;
    let bearer = format!("Bearer {key}");
    let auth = [("authorization", bearer.as_str())];

    // datasets: a direct CSV upload is profiled and listed.
    let datasets = start(&function_binary("datasets"), "datasets", &aws).await;
    let dataset = upload_houses(&datasets, &bearer, "/v1/datasets?name=houses", 60).await;
    assert_eq!(dataset["row_count"], 60, "{dataset}");
    let dataset_id = dataset["dataset_id"]
        .as_str()
        .expect("dataset_id")
        .to_owned();
    let listed = datasets.http("GET", "/datasets", &auth, None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["pagination"]["total"], 1, "{}", listed.json());
    assert_envelope(
        &datasets.http("GET", "/v1/datasets", &[], None).await,
        401,
        "missing_api_key",
    );
    assert_envelope(
        &datasets.http("GET", "/v1/api-keys", &auth, None).await,
        404,
        "not_found",
    );

    // models: a build is accepted (its job waits in SQS on moto) and the model is PENDING.
    let models = start(&function_binary("models"), "models", &aws).await;
    let body = json!({"intent": "predict the price of a house", "dataset_id": dataset_id});
    let body = body.to_string();
    let accepted = models
        .http(
            "POST",
            "/v1/models/houses",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(
        accepted.status,
        202,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    assert_eq!(
        accepted.json()["model_version"],
        "v1.0",
        "{}",
        accepted.json()
    );
    let model = models.http("GET", "/v1/models/houses", &auth, None).await;
    assert_eq!(
        model.status,
        200,
        "{}",
        String::from_utf8_lossy(&model.body)
    );
    assert_eq!(model.json()["status"], "PENDING", "{}", model.json());
    assert_envelope(
        &models.http("GET", "/v1/models", &[], None).await,
        401,
        "missing_api_key",
    );

    // inference: the version is not deployed yet → 409 in the envelope.
    let inference = start(env!("CARGO_BIN_EXE_inference"), "inference", &aws).await;
    let row = br#"{"size": 50, "rooms": 2}"#;
    let not_deployed = inference
        .http(
            "POST",
            "/v1/models/houses/v1/infer",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            Some(row),
        )
        .await;
    assert_envelope(&not_deployed, 409, "conflict");
    assert_envelope(
        &inference.http("GET", "/v1/datasets", &auth, None).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn trainer_reports_only_the_failed_message() {
    let Some(aws) = aws_backends("lambda-trainer").await else {
        return;
    };
    let function = start(env!("CARGO_BIN_EXE_trainer"), "trainer", &aws).await;
    let record = |id: &str, body: &str| {
        json!({
            "messageId": id,
            "receiptHandle": format!("handle-{id}"),
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795435200000",
                           "SenderId": "123456789012", "ApproximateFirstReceiveTimestamp": "1795435200000"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:plexe-jobs",
            "awsRegion": "us-east-1"
        })
    };
    let event = json!({"Records": [
        record("m-1", &json!({"account_id": "acct_x", "job_id": "job_missing_1"}).to_string()),
        record("m-2", "not json"),
        record("m-3", &json!({"account_id": "acct_x", "job_id": "job_missing_3"}).to_string()),
    ]});
    let outcome = function
        .runtime
        .invoke(&event, Duration::from_secs(60))
        .await
        .expect("the trainer answers");
    let Outcome::Response(bytes) = outcome else {
        panic!("the trainer reported an invocation error: {outcome:?}");
    };
    let response: Value = serde_json::from_slice(&bytes).expect("an SQS batch response");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]}),
        "only the unreadable message is retried"
    );
}

/// The trainer with a short timeout (the Runtime API's deadline): with too little time for the
/// build it answers before the deadline, reports the message failed and hands it back to SQS
/// to be delivered again at once (not after the queue's 90-minute visibility timeout); with
/// enough time the redelivery builds.
#[tokio::test]
async fn trainer_hands_a_build_back_before_its_timeout() {
    let Some(aws) = aws_backends("lambda-handback").await else {
        return;
    };
    let key = admin_key(&aws).await;
    let bearer = format!("Bearer {key}");
    let json_auth = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let datasets = start(&function_binary("datasets"), "datasets", &aws).await;
    let dataset = upload_houses(&datasets, &bearer, "/datasets?name=houses", 80).await;
    let dataset_id = dataset["dataset_id"].as_str().unwrap().to_owned();
    let models = start(&function_binary("models"), "models", &aws).await;
    let body = json!({"intent": "predict the price", "dataset_id": dataset_id,
                      "time_budget_s": 60, "max_iterations": 3})
    .to_string();
    let accepted = models
        .http("POST", "/models/houses", &json_auth, Some(body.as_bytes()))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.json());

    let trainer = start(env!("CARGO_BIN_EXE_trainer"), "trainer", &aws).await;
    let receive = || async {
        aws.backends
            .queue
            .receive(1, Duration::from_secs(900), Duration::from_secs(3))
            .await
            .expect("receiving from SQS on moto")
            .into_iter()
            .next()
    };
    let event = |m: &shared::ports::QueueMessage| {
        json!({"Records": [{
            "messageId": m.id, "receiptHandle": m.receipt, "body": m.body,
            "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:plexe-jobs",
            "awsRegion": "us-east-1"
        }]})
    };
    let invoke = |m: shared::ports::QueueMessage, timeout: Duration| {
        let runtime = trainer.runtime.clone();
        let event = event(&m);
        async move {
            match runtime.invoke(&event, timeout).await {
                Ok(Outcome::Response(bytes)) => {
                    serde_json::from_slice::<Value>(&bytes).expect("an SQS batch response")
                }
                other => panic!("the trainer did not answer within {timeout:?}: {other:?}"),
            }
        }
    };
    let status = || async {
        models
            .http("GET", "/models/houses/v1.0/status", &json_auth, None)
            .await
            .json()["status"]
            .clone()
    };

    // 8 s: less than the hand-back margin, the finish reserve and the shortest budget.
    let first = receive().await.expect("the build's job message");
    let id = first.id.clone();
    let answer = invoke(first, Duration::from_secs(8)).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": id}]}),
        "handed back"
    );
    assert_eq!(status().await, "PENDING");
    let again = receive().await.expect("visible again at once");
    assert_eq!((again.id.as_str(), again.receive_count), (id.as_str(), 2));

    // 60 s: the budget is cut to fit, and the build finishes within the invocation.
    let answer = invoke(again, Duration::from_secs(60)).await;
    assert_eq!(answer, json!({"batchItemFailures": []}), "built");
    assert_eq!(status().await, "READY");
}

/// A large upload (over the 16 MB an API function completes in its request) is completed by the
/// task function: `complete` answers 202 with the session queued, the task queue's event source
/// invokes the tasks binary, and the session becomes completed with its dataset; a file that
/// does not match its declared SHA-256 ends `failed` with the reason.
#[tokio::test]
async fn tasks_function_completes_a_large_upload() {
    let Some(aws) = integration_tests::aws_backends_with_tasks("lambda-tasks").await else {
        return;
    };
    let key = admin_key(&aws).await;
    let bearer = format!("Bearer {key}");
    let json_auth = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let datasets = start(&function_binary("datasets"), "datasets", &aws).await;
    let tasks = start(env!("CARGO_BIN_EXE_tasks"), "tasks", &aws).await;
    let (task_queue, _) = aws.resources.task_queues.clone().expect("a task queue");
    let _trigger = integration_tests::apigw::SqsTrigger::start(
        aws_sdk_sqs::Client::new(&aws.sdk),
        task_queue,
        tasks.runtime.clone(),
    );
    // 17.5 MB of CSV.
    let mut csv = String::from("x,y,label\n");
    let mut rows = 0u64;
    while csv.len() < 17_500_000 {
        csv.push_str(&format!("{rows},{},{}\n", rows * 7 % 1000, rows % 3));
        rows += 1;
    }
    let http = reqwest::Client::new();
    let upload = |sha256: Option<&'static str>| {
        let body = json!({"name": "big", "format": "csv", "sha256": sha256}).to_string();
        let datasets = &datasets;
        let json_auth = &json_auth;
        let http = &http;
        let csv = csv.clone();
        async move {
            let created = datasets
                .http(
                    "POST",
                    "/datasets/uploads",
                    json_auth,
                    Some(body.as_bytes()),
                )
                .await;
            assert_eq!(created.status, 201, "{}", created.json());
            let session = created.json();
            let put = http
                .put(session["upload_url"].as_str().unwrap())
                .body(csv)
                .send()
                .await
                .expect("PUT to the presigned URL on moto");
            assert!(put.status().is_success(), "{}", put.status());
            session["upload_id"].as_str().unwrap().to_owned()
        }
    };
    let wait_for = |upload_id: String| {
        let datasets = &datasets;
        let json_auth = &json_auth;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(180);
            loop {
                let status = datasets
                    .http(
                        "GET",
                        &format!("/datasets/uploads/{upload_id}"),
                        json_auth,
                        None,
                    )
                    .await
                    .json();
                if status["status"] == "completed" || status["status"] == "failed" {
                    return status;
                }
                assert!(std::time::Instant::now() < deadline, "{status}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };

    let upload_id = upload(None).await;
    let complete = datasets
        .http(
            "POST",
            &format!("/datasets/uploads/{upload_id}/complete"),
            &json_auth,
            None,
        )
        .await;
    assert_eq!(complete.status, 202, "{}", complete.json());
    assert_eq!(complete.json()["status"], "queued");
    assert_eq!(
        complete.header("location"),
        Some(format!("/datasets/uploads/{upload_id}").as_str())
    );
    let done = wait_for(upload_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let dataset_id = done["dataset_id"].as_str().expect("dataset_id");
    let dataset = datasets
        .http("GET", &format!("/datasets/{dataset_id}"), &json_auth, None)
        .await;
    assert_eq!(dataset.json()["row_count"], rows, "{}", dataset.json());

    // A file that is not the one declared: the task records why.
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let upload_id = upload(Some(wrong)).await;
    let complete = datasets
        .http(
            "POST",
            &format!("/datasets/uploads/{upload_id}/complete"),
            &json_auth,
            None,
        )
        .await;
    assert_eq!(complete.status, 202, "{}", complete.json());
    let failed = wait_for(upload_id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap_or("").contains("SHA-256"),
        "{failed}"
    );
}
