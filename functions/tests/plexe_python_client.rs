//! The published Plexe Python client (`../shared/peers/plexe-python`, installed unmodified into
//! the test venv by `tests/requirements.txt`) runs its whole flow against the real `plexe serve`
//! over HTTPS (`--tls-cert/--tls-key`, a CA of the test's own given to Python as
//! `SSL_CERT_FILE`), with `base_url="https://127.0.0.1:PORT/v0"`: `tests/clients/plexe_python_flow.py`
//! (uploads of one and of two files, a mismatched upload, build, status until completed, infer,
//! batch_infer, cleanup_upload), and the README's Python example as written there. Then the same
//! flow against the Lambda-shaped stack: the real function binaries (keys, datasets, models,
//! inference, trainer) on Lambda Runtime API emulators, behind an API Gateway HTTP API emulator
//! over HTTPS that routes as the templates say (`tests/infra/expected.py`), the trainer fed by an
//! SQS event source emulator, all on DynamoDB / S3 / SQS in moto.
//!
//! Needs `PLEXE_TEST_PYTHON` (set by `tests/run.sh`); `PLEXE_TEST_SKIP_CLIENTS=1` skips it.

mod cli_support;

use cli_support::function_binaries;
use integration_tests::lambda_stack::{self, LambdaStack, expected_routes};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const PLEXE: &str = env!("CARGO_BIN_EXE_plexe");

/// The repository's root (`functions/..`).
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared datasets beside the checkout (`PLEXE_DATASETS_DIR` overrides it).
fn datasets_dir() -> PathBuf {
    std::env::var_os("PLEXE_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/datasets"))
}

/// The test venv's Python, with the client installed; `None` when skipped.
fn python() -> Option<String> {
    if std::env::var("PLEXE_TEST_SKIP_CLIENTS").as_deref() == Ok("1") {
        eprintln!("note: skipping the Python client test (PLEXE_TEST_SKIP_CLIENTS=1)");
        return None;
    }
    let python = std::env::var("PLEXE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "PLEXE_TEST_PYTHON is not set: run tests/run.sh, or set PLEXE_TEST_SKIP_CLIENTS=1 \
             to skip the Python client test"
        )
    });
    let probe = Command::new(&python)
        .args(["-c", "import plexe, httpx"])
        .output()
        .unwrap_or_else(|e| panic!("PLEXE_TEST_PYTHON={python} cannot be run: {e}"));
    assert!(
        probe.status.success(),
        "the Plexe Python client is not installed in {python}: pip install \
         ../shared/peers/plexe-python (tests/requirements.txt does it): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    Some(python)
}

/// `plexe serve` over HTTPS on a free port; killed when dropped.
struct Server {
    child: Child,
    /// `https://127.0.0.1:PORT`
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_tls(data_dir: &Path, cert: &Path, key: &Path) -> Server {
    let utf8 = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let mut child = Command::new(PLEXE)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(utf8(data_dir))
        .args(["--tls-cert", &utf8(cert), "--tls-key", &utf8(key)])
        .env_remove("PLEXE_BACKEND")
        .env_remove("PLEXE_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting plexe serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split("plexe listening on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("plexe serve prints where it listens");
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    assert!(url.starts_with("https://"), "{url}");
    Server { child, url }
}

/// Runs `script` with the test venv's Python against `base_url`; returns its stdout.
fn run_python(python: &str, script: &Path, cwd: &Path, envs: &[(&str, String)]) -> String {
    let mut command = Command::new(python);
    command.arg(script).current_dir(cwd);
    for (name, value) in envs {
        command.env(name, value);
    }
    let out = command
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("running Python");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The README's Python example: the first ```python block of its section on this client.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let clients = readme
        .split("\n### Python: the published Plexe client\n")
        .nth(1)
        .expect("the README has a '### Python: the published Plexe client' section");
    let block = clients
        .split("```python\n")
        .nth(1)
        .expect("that section has a ```python example");
    block
        .split("\n```")
        .next()
        .expect("the example block ends")
        .to_owned()
}

/// Checks what the flow script saw (it asserts the flow itself).
fn check_flow(seen: &Value) {
    assert_eq!(seen["mismatch_status"], 422, "{seen}");
    assert_eq!(seen["mismatch_error"]["code"], "validation_error", "{seen}");
    assert_eq!(
        seen["mismatch_error"]["details"]["field"], "files",
        "{seen}"
    );
    let status = &seen["final_status"];
    assert_eq!(status["status"], "completed", "{seen}");
    assert!(status["error"].is_null(), "{seen}");
    assert!(status["result"]["metric_value"].is_number(), "{seen}");
    let infer = &seen["infer"];
    // `prediction` is the class label, also under the target's name, with the positive
    // class's probability (SPEC §5 output fields).
    let label = infer["prediction"].as_str().expect("a label");
    assert!(["survived", "died"].contains(&label), "{infer}");
    assert_eq!(infer["survived"], infer["prediction"], "{infer}");
    let p = infer["survived_probability"]
        .as_f64()
        .expect("a probability");
    assert!((0.0..=1.0).contains(&p), "{infer}");
    assert_eq!(seen["batch"].as_array().map(Vec::len), Some(5), "{seen}");
    assert_eq!(seen["invalid_row_status"], 422, "{seen}");
    assert_eq!(seen["status_via_module"], "completed", "{seen}");
    let uploads = seen["uploads"].as_array().expect("uploads");
    for (cleanup, upload) in seen["cleanup"]
        .as_array()
        .expect("cleanup")
        .iter()
        .zip(uploads)
    {
        assert_eq!(cleanup["upload_id"], *upload, "{seen}");
        assert_eq!(cleanup["deleted"], true, "{seen}");
    }
    assert_eq!(seen["cleanup_again_status"], 404, "{seen}");
}

#[test]
fn the_published_python_client_runs_its_flow_against_plexe_serve_over_https() {
    let Some(python) = python() else {
        return;
    };
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = integration_tests::tls::make_test_ca(certs.path());
    let data = tempfile::tempdir().expect("tempdir");
    let server = serve_tls(data.path(), &cert, &key);
    let api_key = std::fs::read_to_string(data.path().join("admin.key"))
        .expect("plexe serve wrote admin.key")
        .trim()
        .to_owned();
    let base_url = format!("{}/v0", server.url);
    let titanic = datasets_dir().join("titanic.csv");
    assert!(titanic.is_file(), "{} is missing", titanic.display());
    let scratch = tempfile::tempdir().expect("tempdir");
    let common = |extra: &[(&'static str, String)]| {
        let mut envs = vec![
            ("PLEXE_API_KEY", api_key.clone()),
            ("PLEXE_BASE_URL", base_url.clone()),
            ("SSL_CERT_FILE", ca.display().to_string()),
        ];
        envs.extend(extra.iter().cloned());
        envs
    };

    let script = repo().join("tests/clients/plexe_python_flow.py");
    let stdout = run_python(
        &python,
        &script,
        scratch.path(),
        &common(&[
            ("PLEXE_FLOW_CSV", titanic.display().to_string()),
            ("PLEXE_FLOW_DIR", scratch.path().display().to_string()),
            ("PLEXE_FLOW_MODEL", "legacy_flow".to_owned()),
        ]),
    );
    let seen: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the flow's last line is not JSON ({e}): {stdout}"));
    check_flow(&seen);

    // The README's example, as written there, from a folder holding titanic.csv.
    let example_dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&titanic, example_dir.path().join("titanic.csv")).expect("copying titanic.csv");
    let example = example_dir.path().join("example.py");
    std::fs::write(&example, readme_example()).expect("writing the example");
    let stdout = run_python(&python, &example, example_dir.path(), &common(&[]));
    assert!(stdout.contains("'status': 'completed'"), "{stdout}");
    assert!(stdout.contains("'prediction': "), "{stdout}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_published_python_client_runs_its_flow_against_the_lambda_stack_on_moto() {
    let Some(python) = python() else {
        return;
    };
    let Some(aws) = integration_tests::aws_backends("python-client-lambda").await else {
        return;
    };
    let secret =
        lambda_stack::account_key(&aws, "python-client", shared::domain::accounts::Tier::Pro).await;
    assert!(
        expected_routes(&python).contains_key("ANY /v0/uploads"),
        "the templates route /v0"
    );
    let stack = LambdaStack::start(&aws, &function_binaries(), &python).await;
    let (gateway, ca) = (stack.url.clone(), stack.ca.clone());

    let titanic = datasets_dir().join("titanic.csv");
    let scratch = tempfile::tempdir().expect("tempdir");
    let script = repo().join("tests/clients/plexe_python_flow.py");
    let envs = vec![
        ("PLEXE_API_KEY", secret.clone()),
        ("PLEXE_BASE_URL", format!("{gateway}/v0")),
        ("SSL_CERT_FILE", ca.display().to_string()),
        ("PLEXE_FLOW_CSV", titanic.display().to_string()),
        ("PLEXE_FLOW_DIR", scratch.path().display().to_string()),
        ("PLEXE_FLOW_MODEL", "legacy_flow".to_owned()),
    ];
    let cwd = scratch.path().to_owned();
    let stdout = tokio::task::spawn_blocking(move || run_python(&python, &script, &cwd, &envs))
        .await
        .expect("the Python flow ran");
    let seen: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the flow's last line is not JSON ({e}): {stdout}"));
    check_flow(&seen);
}
