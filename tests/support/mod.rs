//! Test support shared by the integration tests: fresh backends (embedded in a temporary
//! directory, or AWS adapters on moto with resources unique to the test) and servers.

pub mod apigw;
pub mod lambda_stack;
pub mod runtime_api;
pub mod serve_process;
pub mod tls;

use shared::config::Backends;
use tempfile::TempDir;

/// Embedded backends in their own temporary data directory, removed on drop.
pub struct EmbeddedBackends {
    pub backends: Backends,
    pub dir: TempDir,
}

/// Fresh embedded backends. `public_base_url` is what upload URLs start with.
pub fn embedded_backends(public_base_url: &str) -> EmbeddedBackends {
    let dir = tempfile::tempdir().expect("creating a temporary data directory");
    let backends =
        Backends::embedded(dir.path(), public_base_url).expect("opening embedded backends");
    EmbeddedBackends { backends, dir }
}

/// AWS adapters on moto, on a table, bucket and queues created for this test alone.
pub struct AwsBackends {
    pub backends: Backends,
    pub sdk: aws_config::SdkConfig,
    pub resources: shared::config::AwsResources,
    pub endpoint: String,
}

/// Where moto listens (`tests/run.sh` exports it).
pub const ENV_MOTO_ENDPOINT: &str = "PLEXE_TEST_MOTO_ENDPOINT";
/// Set to `1` to skip AWS tests when moto is not available.
pub const ENV_SKIP_AWS: &str = "PLEXE_TEST_SKIP_AWS";

/// moto's endpoint, or `None` when AWS tests are to be skipped (`PLEXE_TEST_SKIP_AWS=1`).
/// Without either, the test fails: AWS coverage is never silently dropped.
pub fn moto_endpoint(test: &str) -> Option<String> {
    match std::env::var(ENV_MOTO_ENDPOINT) {
        Ok(endpoint) if !endpoint.trim().is_empty() => {
            Some(endpoint.trim().trim_end_matches('/').to_owned())
        }
        _ if std::env::var(ENV_SKIP_AWS).as_deref() == Ok("1") => {
            eprintln!("note: skipping AWS test {test} ({ENV_SKIP_AWS}=1)");
            None
        }
        _ => panic!(
            "{ENV_MOTO_ENDPOINT} is unset: run the tests with tests/run.sh (it starts moto), \
             or set {ENV_SKIP_AWS}=1 to skip the AWS tests"
        ),
    }
}

/// SDK configuration for moto: region us-east-1 and dummy credentials, set on this config
/// only (the process environment stays untouched).
pub async fn moto_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A name no other test (in this or a parallel process) uses, valid for DynamoDB, S3 and SQS:
/// lowercase letters, digits and dashes, at most 63 characters.
pub fn unique_name(test: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tag: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "plexe-{}-{}-{n}-{nanos:x}",
        tag.trim_matches('-'),
        std::process::id()
    )
}

/// Fresh AWS backends on moto (see [`moto_endpoint`] for when this returns `None`). The queue
/// dead-letters after 3 receives, like the embedded queue's default.
pub async fn aws_backends(test: &str) -> Option<AwsBackends> {
    let endpoint = moto_endpoint(test)?;
    let sdk = moto_sdk_config(&endpoint).await;
    let name = unique_name(test);
    let dynamo = moto_dynamodb_client(&sdk);
    shared::ports::DynamoStore::create_table(&dynamo, &name)
        .await
        .expect("creating the DynamoDB table on moto");
    let s3 = shared::config::s3_client(&sdk);
    shared::ports::S3Blobs::create_bucket(&s3, &name, shared::domain::layout::EXPIRING_PREFIXES)
        .await
        .expect("creating the S3 bucket on moto");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (queue_url, dlq_url) = shared::ports::SqsQueue::create_queues(&sqs, &name, 3)
        .await
        .expect("creating the SQS queues on moto");
    let resources = shared::config::AwsResources {
        table: name.clone(),
        bucket: name,
        queue_url,
        dlq_url,
        task_queues: None,
    };
    let mut backends = Backends::aws(&sdk, &resources);
    backends.store = std::sync::Arc::new(shared::ports::DynamoStore::new(dynamo, &resources.table));
    Some(AwsBackends {
        backends,
        sdk,
        resources,
        endpoint,
    })
}

/// [`aws_backends`] with a task queue too (its dead-letter queue after 5 receives, as in the
/// templates): large upload completions are queued for the task function.
pub async fn aws_backends_with_tasks(test: &str) -> Option<AwsBackends> {
    let mut aws = aws_backends(test).await?;
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
    let queues =
        shared::ports::SqsQueue::create_queues(&sqs, &format!("{}-tasks", aws.resources.table), 5)
            .await
            .expect("creating the task queues on moto");
    aws.resources.task_queues = Some(queues);
    aws.backends = Backends::aws(&aws.sdk, &aws.resources);
    aws.backends.store = std::sync::Arc::new(shared::ports::DynamoStore::new(
        moto_dynamodb_client(&aws.sdk),
        &aws.resources.table,
    ));
    Some(aws)
}

/// A DynamoDB client for moto that sends one request at a time.
///
/// moto's server evaluates an UpdateItem's condition, computes its new values and stores them in
/// separate steps without a lock, so two concurrent writes to one item interleave inside moto
/// and lose updates (measured: 50 concurrent `ADD`s ended at 49). DynamoDB applies each write to
/// an item atomically. Sending requests one at a time restores that per-request atomicity while
/// the tasks' requests still interleave arbitrarily, so an adapter that read-modified-wrote on
/// the client side would still be caught by the concurrency tests.
pub fn moto_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .http_client(OneRequestAtATime {
            turn: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The SDK's default HTTP client, with one lock held for the whole exchange by every connector.
#[derive(Debug, Clone)]
struct OneRequestAtATime {
    turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl HttpClient for OneRequestAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let inner = aws_smithy_http_client::default_connector(settings, components.sleep_impl())
            .expect("the SDK's default HTTP connector is built in (rustls-aws-lc)");
        SharedHttpConnector::new(OneRequestAtATimeConnector {
            inner,
            turn: self.turn.clone(),
        })
    }
}

#[derive(Debug)]
struct OneRequestAtATimeConnector {
    inner: SharedHttpConnector,
    turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl HttpConnector for OneRequestAtATimeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let turn = self.turn.clone();
        HttpConnectorFuture::new(async move {
            let _turn = turn.lock().await;
            inner.call(request).await
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP servers: the merged app (`shared::http::app`, what `plexe serve` serves) on a loopback
// port, on either backend.

use shared::http::AppState;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// A running app on `127.0.0.1:<free port>`; stops (and drops its backend) when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    /// The same store/blobs/queue the server uses (to set up accounts directly).
    pub state: AppState,
    pub backend: Backend,
    /// The AWS side's SDK configuration and resources (on the AWS backend), to read the table
    /// and bucket directly.
    pub aws: Option<(aws_config::SdkConfig, shared::config::AwsResources)>,
    server: tokio::task::JoinHandle<()>,
    /// The embedded data directory (on the embedded backend), alive as long as the server.
    data_dir: Option<TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A second server on a [`TestApp`]'s backend ([`TestApp::another_process`]).
pub struct OtherProcess {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the merged app on `backend`; `None` only when AWS tests are skipped
/// (`PLEXE_TEST_SKIP_AWS=1`).
pub async fn start_app(backend: Backend, test: &str) -> Option<TestApp> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let addr = listener.local_addr().expect("local address");
    let url = format!("http://{addr}");
    let (backends, data_dir, aws) = match backend {
        Backend::Embedded => {
            let e = embedded_backends(&url);
            (e.backends, Some(e.dir), None)
        }
        Backend::Aws => {
            let a = aws_backends_with_tasks(test).await?;
            (a.backends, None, Some((a.sdk, a.resources)))
        }
    };
    let config = shared::config::Config::embedded_defaults(
        data_dir
            .as_ref()
            .map_or(std::path::Path::new("unused"), |d| d.path()),
    );
    let state = AppState::new(backends, config);
    let app = shared::http::app(state.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("test server stopped: {e}");
        }
    });
    Some(TestApp {
        url,
        state,
        backend,
        aws,
        server,
        data_dir,
    })
}

impl TestApp {
    /// The embedded data directory (`None` on AWS).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_ref().map(|d| d.path())
    }

    /// Every byte the backend keeps: on the embedded backend each file under the data directory
    /// (the SQLite file and its journal, the blobs), on AWS each item of the table (as the
    /// DynamoDB JSON moto answers a scan with) and each object of the bucket. For tests that
    /// look for what must never be stored.
    pub async fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        let mut found = Vec::new();
        if let Some(dir) = self.data_dir() {
            let mut stack = vec![dir.to_path_buf()];
            while let Some(d) = stack.pop() {
                for entry in std::fs::read_dir(&d).expect("reading the data directory") {
                    let path = entry.expect("a directory entry").path();
                    if path.is_dir() {
                        stack.push(path);
                    } else {
                        let bytes = std::fs::read(&path).expect("reading a data file");
                        found.push((path.display().to_string(), bytes));
                    }
                }
            }
        }
        if let Some((sdk, resources)) = &self.aws {
            let dynamo = aws_sdk_dynamodb::Client::new(sdk);
            let mut pages = dynamo
                .scan()
                .table_name(&resources.table)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for item in page.expect("scanning the table").items() {
                    found.push((
                        format!("table item {item:?}"),
                        format!("{item:?}").into_bytes(),
                    ));
                }
            }
            let s3 = shared::config::s3_client(sdk);
            let mut pages = s3
                .list_objects_v2()
                .bucket(&resources.bucket)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for object in page.expect("listing the bucket").contents() {
                    let key = object.key().expect("an object key").to_owned();
                    let body = s3
                        .get_object()
                        .bucket(&resources.bucket)
                        .key(&key)
                        .send()
                        .await
                        .expect("reading an object")
                        .body
                        .collect()
                        .await
                        .expect("an object body")
                        .to_vec();
                    found.push((format!("object {key}"), body));
                }
            }
        }
        found
    }

    /// The same app on the same backend with caches of its own, as a second process (another
    /// Lambda, another `plexe serve` on the data dir) would be; serves until dropped.
    pub async fn another_process(&self) -> OtherProcess {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let app = shared::http::app(self.state.with_own_caches());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("test server stopped: {e}");
            }
        });
        OtherProcess { url, server }
    }

    /// `self.url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A new account of `tier` with an admin key; returns (account id, secret).
    pub async fn account(&self, tier: shared::domain::accounts::Tier) -> (String, String) {
        let (account, issued) = shared::domain::accounts::create_account_with_admin_key(
            self.state.store.as_ref(),
            shared::domain::accounts::NewAccount {
                name: "test".to_owned(),
                tier,
                rate_limit_per_minute: None,
            },
        )
        .await
        .expect("creating a test account");
        (account.account_id, issued.secret)
    }
}

/// One HTTP client for a test: no proxy from the environment, generous pool.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("building an HTTP client")
}

/// Runs `$case(&TestApp)` once per backend, as `<case>_embedded` and `<case>_aws`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let app = $crate::start_app($crate::Backend::Embedded, stringify!($case))
                        .await
                        .expect("embedded app");
                    super::$case(&app).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(app) = $crate::start_app($crate::Backend::Aws, stringify!($case)).await
                    else {
                        return;
                    };
                    super::$case(&app).await;
                }
            )*
        }
    };
}
