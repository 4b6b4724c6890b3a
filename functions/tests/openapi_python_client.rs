//! `/openapi.json` is complete enough to generate a client: `openapi-python-client` (from
//! `tests/requirements.txt`, in the venv `tests/run.sh` makes) generates a Python client from the
//! live document of a real `plexe serve`, pip installs it into a temporary folder, and
//! `tests/openapi_client/flow.py` runs a whole flow with it (dataset, build, status polling,
//! deploy, infer, list models, an error envelope).

mod cli_support;

use cli_support::{Server, readme_block, titanic};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The venv's Python: `PLEXE_TEST_PYTHON` (set by `tests/run.sh`).
fn python() -> Option<PathBuf> {
    match std::env::var("PLEXE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("PLEXE_TEST_SKIP_PYTHON_CLIENT").as_deref() == Ok("1") => None,
        _ => panic!(
            "PLEXE_TEST_PYTHON is not set: run tests/run.sh, or set \
             PLEXE_TEST_SKIP_PYTHON_CLIENT=1 to skip the generated Python client"
        ),
    }
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_generated_python_client_runs_the_whole_flow() {
    let Some(python) = python() else { return };
    let bin = python.parent().unwrap_or(Path::new("."));
    let generator = bin.join("openapi-python-client");
    assert!(
        generator.is_file(),
        "{} not found: tests/requirements.txt installs it (tests/run.sh)",
        generator.display()
    );
    let server = Server::start();
    let work = tempfile::tempdir().expect("tempdir");
    let package = work.path().join("plexe-client");

    // Generate from the live document.
    let generated = run(
        Command::new(&generator)
            .args(["generate", "--meta", "setup", "--url"])
            .arg(format!("{}/openapi.json", server.url))
            .arg("--output-path")
            .arg(&package),
        "openapi-python-client generate",
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    // The only thing it may leave out: the CSV/Parquet alternatives of bodies that also take
    // JSON or a binary file (it supports one body type per kind).
    for warning in said.split("WARNING").skip(1) {
        assert!(
            warning.contains("Unsupported content type text/csv")
                || warning.contains("Unsupported content type application/vnd.apache.parquet"),
            "openapi-python-client could not use part of the document:\n{warning}"
        );
    }
    assert!(
        package
            .join("plexe_client/api/models/create_model.py")
            .is_file()
    );

    // Install it into a temporary folder (no index: its dependencies are the generator's).
    let site = work.path().join("site");
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--target",
            ])
            .arg(&site)
            .arg(&package),
        "pip install the generated client",
    );

    let flow = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/openapi_client/flow.py");
    let output = run(
        Command::new(&python)
            .arg(&flow)
            .arg(titanic())
            .current_dir(work.path())
            .env("PYTHONPATH", &site)
            .env("PLEXE_URL", &server.url)
            .env("PLEXE_API_KEY", &server.admin_key),
        "the generated client's flow",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("generated client flow ok") && stdout.contains("v1.0 READY"),
        "{stdout}"
    );

    // The README's example, as written, with `titanic.csv` in its folder.
    std::fs::copy(titanic(), work.path().join("titanic.csv")).expect("copy");
    let example = readme_block("### Generated clients", "python");
    let output = run(
        Command::new(&python)
            .args(["-c", &example])
            .current_dir(work.path())
            .env("PYTHONPATH", &site)
            .env("PLEXE_URL", &server.url)
            .env("PLEXE_API_KEY", &server.admin_key),
        "the README's generated-client example",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with("READY {'survived': "), "{stdout}");
    assert!(first.contains("'survived_probability': "), "{stdout}");
    assert_eq!(lines.next(), Some("['survival', 'titanic-py']"), "{stdout}");
}
