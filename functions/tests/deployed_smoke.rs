//! `tests/deployed_smoke.sh URL KEY`, the smoke test an operator runs after a deploy, run as
//! written against a real `plexe serve` and against the Lambda-shaped stack on moto (the real
//! function binaries behind the API Gateway emulator over HTTPS). Each run must pass, print
//! every step, and leave nothing behind; a wrong key must fail it at the first keyed step.

mod cli_support;

use cli_support::{Server, function_binaries};
use integration_tests::lambda_stack::{self, LambdaStack};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/deployed_smoke.sh")
}

fn smoke(url: &str, key: &str, envs: &[(&str, String)]) -> Output {
    let mut command = Command::new("bash");
    command.arg(script()).args([url, key]);
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("running tests/deployed_smoke.sh")
}

/// The script passed and said so at every step.
fn passed(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the smoke test failed ({:?}):\n{stdout}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "smoke: health: ok",
        "smoke: dataset: ds_",
        "smoke: build: ",
        "smoke: built: v1.0 READY, target churned",
        "smoke: deployed: dep_",
        "smoke: infer: {",
        "smoke: batch: 2 predictions",
        "smoke: batch job: job_",
        "smoke: cleaned up: ok",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
    stdout
}

/// What the account holds afterwards: the script's model and dataset are gone.
async fn nothing_left(client: &reqwest::Client, url: &str, key: &str) {
    for (path, field) in [("/models", "models"), ("/datasets", "datasets")] {
        let body: Value = client
            .get(format!("{url}{path}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("listing")
            .json()
            .await
            .expect("a JSON list");
        let left = body[field].as_array().map(Vec::len);
        assert_eq!(left, Some(0), "{path} after the smoke test: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_test_passes_against_plexe_serve_and_cleans_up() {
    let server = Server::start();
    let (url, key) = (server.url.clone(), server.admin_key.clone());
    let output = tokio::task::spawn_blocking(move || smoke(&url, &key, &[]))
        .await
        .expect("the script ran");
    passed(&output);
    nothing_left(&reqwest::Client::new(), &server.url, &server.admin_key).await;

    // A wrong key stops it at the first keyed step, with the API's answer shown.
    let url = server.url.clone();
    let output = tokio::task::spawn_blocking(move || smoke(&url, "plx_wrong", &[]))
        .await
        .expect("the script ran");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("POST /datasets: expected HTTP 201, got 401")
            && stderr.contains("invalid_api_key"),
        "{stderr}"
    );
    // And without its arguments it says how to call it.
    let usage = Command::new("bash")
        .arg(script())
        .output()
        .expect("running the script");
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_smoke_test_passes_against_the_lambda_stack_on_moto() {
    let Ok(python) = std::env::var("PLEXE_TEST_PYTHON") else {
        panic!("PLEXE_TEST_PYTHON is not set: run tests/run.sh (the routes come from tests/infra)");
    };
    let Some(aws) = integration_tests::aws_backends_with_tasks("deployed-smoke").await else {
        return;
    };
    let secret =
        lambda_stack::account_key(&aws, "smoke", shared::domain::accounts::Tier::Pro).await;
    let stack = LambdaStack::start(&aws, &function_binaries(), &python).await;
    let (url, key) = (stack.url.clone(), secret.clone());
    let ca = stack.ca.display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        smoke(
            &url,
            &key,
            &[
                ("CURL_CA_BUNDLE", ca),
                ("PLEXE_SMOKE_BUILD_TIMEOUT_S", "300".to_owned()),
            ],
        )
    })
    .await
    .expect("the script ran");
    let stdout = passed(&output);
    assert!(stdout.contains("smoke: health: ok"), "{stdout}");
    let pem = std::fs::read(&stack.ca).expect("the CA file");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM CA"))
        .build()
        .expect("an HTTPS client");
    nothing_left(&client, &stack.url, &secret).await;
}
