//! The Lambda-shaped stack as one thing a test starts: the real function binaries (keys,
//! datasets, models, inference, trainer) each on a Runtime API emulator, behind the API Gateway
//! HTTP API emulator over HTTPS (a CA of the test's own), routed as the templates route
//! (`tests/infra/expected.py`), the trainer fed by the SQS event source emulator, all on
//! DynamoDB / S3 / SQS in moto. Everything stops when the stack is dropped.

use crate::AwsBackends;
use crate::apigw::{ApiGateway, Integration, SqsTrigger};
use crate::runtime_api::{HttpApiResponse, Outcome, RuntimeApi, http_api_event};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Where the function binaries are: `env!("CARGO_BIN_EXE_…")` of the `functions` package for
/// inference, trainer and tasks, [`function_binary`] for functions/api's keys, datasets and models.
pub struct FunctionBinaries {
    pub keys: String,
    pub datasets: String,
    pub models: String,
    pub inference: String,
    pub trainer: String,
    pub tasks: String,
}

/// One function process on its own Runtime API emulator; killed when dropped.
pub struct Function {
    pub runtime: Arc<RuntimeApi>,
    child: Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    /// The function process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One API Gateway HTTP API request through the function; panics unless it answers.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpApiResponse {
        let event = http_api_event(method, path, headers, body);
        match self.runtime.invoke(&event, Duration::from_secs(60)).await {
            Ok(Outcome::Response(bytes)) => {
                HttpApiResponse::parse(&bytes).expect("an API Gateway response document")
            }
            Ok(Outcome::Error(bytes)) => panic!(
                "{method} {path}: the function reported an error: {}",
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
}

/// A function binary in the running test's target directory (`target/<profile>/<name>`). The
/// API groups' functions are another package's (functions/api), which `CARGO_BIN_EXE_…` does
/// not reach; `cargo test --workspace` builds both packages' binaries before any test runs.
pub fn function_binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    // The test is target/<profile>/deps/<test>-<hash>.
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --workspace`, or `cargo build -p api-functions -p functions` first",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// A fresh account on the test's table; returns its admin key.
pub async fn admin_key(aws: &AwsBackends) -> String {
    account_key(aws, "lambda-test", shared::domain::accounts::Tier::Basic).await
}

/// A fresh account named `name` on `tier` on the test's table; returns its admin key.
pub async fn account_key(
    aws: &AwsBackends,
    name: &str,
    tier: shared::domain::accounts::Tier,
) -> String {
    let (_, issued) = shared::domain::accounts::create_account_with_admin_key(
        aws.backends.store.as_ref(),
        shared::domain::accounts::NewAccount {
            name: name.to_owned(),
            tier,
            rate_limit_per_minute: None,
        },
    )
    .await
    .expect("creating an account on moto");
    issued.secret
}

/// Asserts that `response` is the SPEC's error envelope with `status` and `code`, carrying the
/// request id of its `x-request-id` header.
pub fn assert_envelope(response: &HttpApiResponse, status: u16, code: &str) {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    let request_id = response
        .header("x-request-id")
        .expect("x-request-id header");
    assert_eq!(body["error"]["request_id"], request_id, "{body}");
}

/// Starts `binary` as the Lambda function `name` with `env` (and the Runtime API's own).
pub async fn start_function(binary: &str, name: &str, env: &[(String, String)]) -> Function {
    let runtime = Arc::new(RuntimeApi::start().await);
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env.iter().cloned().chain(runtime.lambda_env(name)) {
        command.env(k, v);
    }
    let child = command.spawn().expect("starting a function binary");
    Function { runtime, child }
}

/// Where the templates point `SSL_CERT_FILE` (provided.al2023's CA bundle), or this machine's
/// bundle (Debian's) when it has no such file: the functions then read their TLS roots from one
/// file here as they do on Lambda.
pub fn ca_bundle() -> Option<&'static str> {
    [
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    .into_iter()
    .find(|path| std::path::Path::new(path).is_file())
}

/// The environment every function of the stack gets, as the templates set it: the AWS backend
/// on moto.
pub fn function_env(aws: &AwsBackends) -> Vec<(String, String)> {
    let tasks = aws.resources.task_queues.iter().flat_map(|(queue, dlq)| {
        [
            ("PLEXE_TASK_QUEUE_URL", queue.clone()),
            ("PLEXE_TASK_DLQ_URL", dlq.clone()),
        ]
    });
    [
        ("PLEXE_BACKEND", "aws".to_owned()),
        ("PLEXE_TABLE", aws.resources.table.clone()),
        ("PLEXE_BUCKET", aws.resources.bucket.clone()),
        ("PLEXE_QUEUE_URL", aws.resources.queue_url.clone()),
        ("PLEXE_DLQ_URL", aws.resources.dlq_url.clone()),
        ("AWS_ENDPOINT_URL", aws.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .chain(ca_bundle().map(|path| ("SSL_CERT_FILE", path.to_owned())))
    .chain(tasks)
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The API's routes and the function each reaches, as both templates must have them
/// (`tests/infra/expected.py`, which the template checks hold the templates to).
pub fn expected_routes(python: &str) -> HashMap<String, String> {
    let infra = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra");
    let out = Command::new(python)
        .current_dir(infra)
        .args([
            "-c",
            "import json, expected; print(json.dumps(expected.EXPECTED_ROUTES))",
        ])
        .output()
        .expect("running Python");
    assert!(
        out.status.success(),
        "reading tests/infra/expected.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the routes as JSON")
}

/// A running stack.
pub struct LambdaStack {
    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    /// The PEM of the CA that signed the gateway's certificate (for `SSL_CERT_FILE`,
    /// `CURL_CA_BUNDLE`).
    pub ca: PathBuf,
    _gateway: ApiGateway,
    _jobs: SqsTrigger,
    /// The task function's trigger, when the backends have a task queue.
    _tasks: Option<SqsTrigger>,
    _functions: Vec<Function>,
    _certs: tempfile::TempDir,
}

impl LambdaStack {
    /// Starts every function on `aws`, the trainer's queue trigger (and the task function's,
    /// when `aws` has a task queue) and the gateway, with the
    /// routes `tests/infra/expected.py` gives (read with `python`).
    pub async fn start(aws: &AwsBackends, binaries: &FunctionBinaries, python: &str) -> Self {
        let env = function_env(aws);
        let mut functions = Vec::new();
        let mut by_logical_id = HashMap::new();
        for (logical, binary, name) in [
            ("KeysFunction", &binaries.keys, "keys"),
            ("DatasetsFunction", &binaries.datasets, "datasets"),
            ("ModelsFunction", &binaries.models, "models"),
            ("InferenceFunction", &binaries.inference, "inference"),
        ] {
            let function = start_function(binary, name, &env).await;
            by_logical_id.insert(logical, function.runtime.clone());
            functions.push(function);
        }
        let trainer = start_function(&binaries.trainer, "trainer", &env).await;
        let jobs = SqsTrigger::start(
            aws_sdk_sqs::Client::new(&aws.sdk),
            aws.resources.queue_url.clone(),
            trainer.runtime.clone(),
        );
        functions.push(trainer);
        let mut task_trigger = None;
        if let Some((task_queue_url, _)) = &aws.resources.task_queues {
            let tasks = start_function(&binaries.tasks, "tasks", &env).await;
            task_trigger = Some(SqsTrigger::start(
                aws_sdk_sqs::Client::new(&aws.sdk),
                task_queue_url.clone(),
                tasks.runtime.clone(),
            ));
            functions.push(tasks);
        }
        let routes: Vec<Integration> = expected_routes(python)
            .into_iter()
            .filter_map(|(route_key, target)| {
                by_logical_id
                    .get(target.as_str())
                    .map(|runtime| Integration {
                        route_key,
                        function: runtime.clone(),
                    })
            })
            .collect();
        let certs = tempfile::tempdir().expect("tempdir");
        let (ca, cert, key) = crate::tls::make_test_ca(certs.path());
        let gateway = ApiGateway::start(routes, &cert, &key).await;
        LambdaStack {
            url: gateway.url.clone(),
            ca,
            _gateway: gateway,
            _jobs: jobs,
            _tasks: task_trigger,
            _functions: functions,
            _certs: certs,
        }
    }
}
