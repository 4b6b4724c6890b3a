//! The `plexe` command-line client end to end: the real binary against a real `plexe serve` on
//! the titanic dataset (upload through a session → build --wait → deploy → predict a CSV in
//! batches → download the ONNX file → keys create/revoke), with its exit codes and the error
//! envelope's message on failures.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

mod cli_support;

use cli_support::{PLEXE, Server, readme_block, titanic};

/// Runs the CLI in `cwd` with exactly this URL and key (no config file from the machine).
fn cli(cwd: &Path, url: &str, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(PLEXE);
    command
        .args(args)
        .current_dir(cwd)
        .env("PLEXE_URL", url)
        .env("XDG_CONFIG_HOME", cwd.join("no-config"))
        .env_remove("PLEXE_CONFIG")
        .env_remove("PLEXE_API_KEY");
    if let Some(key) = key {
        command.env("PLEXE_API_KEY", key);
    }
    command.output().expect("running plexe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn json_of(output: &Output, what: &str) -> Value {
    let stdout = ok(output, what);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
}

/// Asserts the exit code and returns stderr.
fn fails(output: &Output, code: i32, what: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: expected exit code {code}:\nstdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("reading CSV");
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("record").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[test]
fn the_cli_uploads_builds_deploys_predicts_downloads_and_manages_keys() {
    let server = Server::start();
    let work = tempfile::tempdir().expect("tempdir");
    let cwd = work.path();
    let url = server.url.as_str();
    let admin = Some(server.admin_key.as_str());
    let dataset_file = titanic();
    let dataset_path = dataset_file.to_str().expect("utf-8 path");
    let (input_header, input_rows) = csv_rows(&dataset_file);

    // Upload through a session: the server checked size and SHA-256 and profiled it.
    let dataset = json_of(
        &cli(
            cwd,
            url,
            admin,
            &["datasets", "upload", dataset_path, "--json"],
        ),
        "datasets upload",
    );
    let dataset_id = dataset["dataset_id"]
        .as_str()
        .expect("dataset_id")
        .to_owned();
    assert!(dataset_id.starts_with("ds_"), "{dataset}");
    assert_eq!(dataset["name"], "titanic");
    assert_eq!(dataset["row_count"], input_rows.len());
    let table = ok(
        &cli(cwd, url, admin, &["datasets", "list"]),
        "datasets list",
    );
    assert!(table.starts_with("DATASET_ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&dataset_id) && l.contains("titanic")),
        "{table}"
    );
    let shown = ok(
        &cli(cwd, url, admin, &["datasets", "show", &dataset_id]),
        "datasets show",
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("survived") && l.contains("string")),
        "{shown}"
    );
    let preview = json_of(
        &cli(
            cwd,
            url,
            admin,
            &["datasets", "preview", &dataset_id, "--limit", "3", "--json"],
        ),
        "datasets preview",
    );
    assert_eq!(preview["rows"].as_array().map(Vec::len), Some(3));
    assert_eq!(preview["rows"][0]["sex"], "female");

    // Build and follow it: the build's log lines stream to stderr, the status to stdout.
    let built = cli(
        cwd,
        url,
        admin,
        &[
            "models",
            "build",
            "titanic",
            "--dataset",
            &dataset_id,
            "--intent",
            "predict whether a passenger survived",
            "--time-budget",
            "5",
            "--wait",
        ],
    );
    let status = ok(&built, "models build --wait");
    let log = text(&built.stderr);
    assert!(status.contains("READY"), "{status}");
    assert!(status.contains("100%"), "{status}");
    assert!(log.contains("Build started: titanic v1.0"), "{log}");
    assert!(
        log.lines().filter(|l| l.contains(" info ")).count() >= 3,
        "the build's log lines: {log}"
    );
    let models = json_of(
        &cli(cwd, url, admin, &["models", "list", "--json"]),
        "models list",
    );
    assert_eq!(models["models"][0]["model_name"], "titanic");
    assert_eq!(models["models"][0]["status"], "READY");
    let described = ok(
        &cli(cwd, url, admin, &["models", "describe", "titanic"]),
        "models describe",
    );
    assert!(described.contains("survived"), "{described}");
    assert!(described.contains("FEATURE"), "{described}");

    // Predicting before deploying: the API's 409, its message, exit code 1.
    let input = cwd.join("passengers.csv");
    std::fs::copy(&dataset_file, &input).expect("copy");
    let refused = cli(
        cwd,
        url,
        admin,
        &[
            "predict",
            "titanic",
            "--file",
            "passengers.csv",
            "-o",
            "out.csv",
        ],
    );
    let message = fails(&refused, 1, "predict before deploy");
    assert!(message.starts_with("plexe: error: "), "{message}");
    assert!(message.contains("deploy"), "{message}");
    assert!(message.contains("409 conflict"), "{message}");
    assert!(!cwd.join("out.csv").exists(), "no half-written output");
    // With --json the envelope itself, on stderr.
    let refused = cli(
        cwd,
        url,
        admin,
        &[
            "predict",
            "titanic/v1",
            "--file",
            "passengers.csv",
            "--json",
        ],
    );
    let envelope: Value =
        serde_json::from_str(fails(&refused, 1, "predict --json").trim()).expect("envelope");
    assert_eq!(envelope["error"]["code"], "conflict");
    assert_eq!(envelope["error"]["status"], 409);

    let deployed = ok(
        &cli(cwd, url, admin, &["models", "deploy", "titanic"]),
        "models deploy",
    );
    assert!(
        deployed.contains("Deployed titanic v1.0 to production"),
        "{deployed}"
    );

    // A CSV in batches of 500 rows: every input row, in order, with the predictions appended.
    let predicted = ok(
        &cli(
            cwd,
            url,
            admin,
            &[
                "predict",
                "titanic/v1",
                "--file",
                "passengers.csv",
                "-o",
                "out.csv",
                "--batch-rows",
                "500",
            ],
        ),
        "predict",
    );
    let batches = input_rows.len().div_ceil(500);
    assert!(
        predicted.contains(&format!(
            "Predicted {} rows in {batches} batches",
            input_rows.len()
        )),
        "{predicted}"
    );
    let (output_header, output_rows) = csv_rows(&cwd.join("out.csv"));
    assert_eq!(&output_header[..input_header.len()], &input_header[..]);
    assert!(
        output_header.len() > input_header.len(),
        "prediction columns appended: {output_header:?}"
    );
    assert_eq!(output_rows.len(), input_rows.len());
    for (out, input) in output_rows.iter().zip(&input_rows) {
        assert_eq!(&out[..input.len()], &input[..]);
    }
    let prediction_column = output_header
        .iter()
        .position(|c| c == "predicted_survived")
        .expect("the prediction column (the input has the target, so it is prefixed)");
    assert!(
        output_rows
            .iter()
            .all(|r| ["survived", "died"].contains(&r[prediction_column].as_str())),
        "{:?}",
        output_header
    );
    // Without -o the CSV goes to stdout.
    let stdout_csv = ok(
        &cli(
            cwd,
            url,
            admin,
            &["predict", "titanic", "--file", "passengers.csv"],
        ),
        "predict to stdout",
    );
    // (The same rows and columns; probabilities may differ in their last float digit between
    // batch sizes, so they are not compared exactly.)
    let mut from_stdout = csv::Reader::from_reader(stdout_csv.as_bytes());
    let stdout_header: Vec<String> = from_stdout
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(stdout_header, output_header);
    let stdout_rows: Vec<csv::StringRecord> =
        from_stdout.records().map(|r| r.expect("record")).collect();
    assert_eq!(stdout_rows.len(), output_rows.len());
    for (a, b) in stdout_rows.iter().zip(&output_rows) {
        assert_eq!(
            &a.iter().take(input_header.len()).collect::<Vec<_>>(),
            &b[..input_header.len()]
        );
    }

    // The ONNX file, whole.
    let downloaded = json_of(
        &cli(
            cwd,
            url,
            admin,
            &[
                "models",
                "download",
                "titanic",
                "v1",
                "-o",
                "model.onnx",
                "--json",
            ],
        ),
        "models download",
    );
    let onnx = std::fs::read(cwd.join("model.onnx")).expect("model.onnx");
    assert_eq!(downloaded["size_bytes"], onnx.len());
    let describe = json_of(
        &cli(
            cwd,
            url,
            admin,
            &["models", "describe", "titanic", "v1", "--json"],
        ),
        "describe --json",
    );
    assert_eq!(describe["artifact"]["size_bytes"], onnx.len());

    // Keys: a read-only key cannot manage keys (403), a revoked one is refused (401).
    let created = json_of(
        &cli(
            cwd,
            url,
            admin,
            &["keys", "create", "ci", "--scopes", "read,predict", "--json"],
        ),
        "keys create",
    );
    let ci_key = created["api_key"].as_str().expect("api_key").to_owned();
    let ci_id = created["key_id"].as_str().expect("key_id").to_owned();
    let listed = ok(&cli(cwd, url, admin, &["keys", "list"]), "keys list");
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&ci_id) && l.contains("read,predict")),
        "{listed}"
    );
    let forbidden = cli(cwd, url, Some(&ci_key), &["keys", "list"]);
    assert!(fails(&forbidden, 1, "keys list with a read key").contains("403 forbidden"));
    ok(
        &cli(cwd, url, Some(&ci_key), &["models", "show", "titanic"]),
        "models show with the read key",
    );
    let revoked = ok(
        &cli(cwd, url, admin, &["keys", "revoke", &ci_id]),
        "keys revoke",
    );
    assert!(revoked.contains(&format!("Revoked {ci_id}")), "{revoked}");
    let refused = cli(cwd, url, Some(&ci_key), &["datasets", "list"]);
    assert!(fails(&refused, 1, "a revoked key").contains("401 invalid_api_key"));

    // Undeploy: predictions are refused again.
    ok(
        &cli(cwd, url, admin, &["models", "undeploy", "titanic"]),
        "models undeploy",
    );
    fails(
        &cli(
            cwd,
            url,
            admin,
            &["predict", "titanic", "--file", "passengers.csv"],
        ),
        1,
        "predict after undeploy",
    );

    // The key and URL from a config file.
    let config = cwd.join("plexe.json");
    std::fs::write(
        &config,
        serde_json::json!({"url": url, "api_key": server.admin_key}).to_string(),
    )
    .expect("config");
    let from_file = Command::new(PLEXE)
        .args(["models", "list", "--config"])
        .arg(&config)
        .env_remove("PLEXE_URL")
        .env_remove("PLEXE_API_KEY")
        .output()
        .expect("plexe");
    assert!(ok(&from_file, "with a config file").contains("titanic"));
}

#[test]
fn usage_and_connection_errors_have_their_own_exit_codes() {
    let work = tempfile::tempdir().expect("tempdir");
    let cwd = work.path();
    // No key anywhere: a usage error that says where a key goes.
    let no_key = cli(cwd, "http://127.0.0.1:9", None, &["datasets", "list"]);
    assert!(fails(&no_key, 2, "no key").contains("PLEXE_API_KEY"));
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let down = cli(
        cwd,
        &format!("http://127.0.0.1:{port}"),
        Some("plx_x"),
        &["models", "list"],
    );
    assert!(fails(&down, 3, "no server").contains("cannot reach"));
    // A build without a dataset or file is refused by clap.
    let build = cli(
        cwd,
        "http://127.0.0.1:9",
        Some("plx_x"),
        &["models", "build", "m", "--intent", "x"],
    );
    fails(&build, 2, "build without --dataset or --file");
    // A bad model name is a usage error found before anything is uploaded (nothing listens).
    std::fs::write(cwd.join("rows.csv"), "a,b\n1,2\n").expect("write");
    let bad_name = cli(
        cwd,
        &format!("http://127.0.0.1:{port}"),
        Some("plx_x"),
        &[
            "models",
            "build",
            "Bad Name",
            "--file",
            "rows.csv",
            "--intent",
            "predict b",
        ],
    );
    assert!(fails(&bad_name, 2, "a bad model name").contains("model name"));
    // Local files that cannot be used are errors (1) that say what is wrong, before any request.
    std::fs::write(cwd.join("empty.csv"), "").expect("write");
    std::fs::write(cwd.join("ragged.csv"), "a,b\n1,2,3\n").expect("write");
    std::fs::write(cwd.join("blob.dat"), [0u8, 159, 146, 150]).expect("write");
    let offline = format!("http://127.0.0.1:{port}");
    for (args, says) in [
        (&["datasets", "upload", "empty.csv"][..], "is empty"),
        (&["datasets", "upload", "blob.dat"][..], "--format"),
        (&["predict", "m", "--file", "empty.csv"][..], "no rows"),
        (
            &["predict", "m", "--file", "ragged.csv"][..],
            "not readable CSV",
        ),
    ] {
        let failed = cli(cwd, &offline, Some("plx_x"), args);
        let message = fails(&failed, 1, &args.join(" "));
        assert!(message.contains(says), "{args:?}: {message}");
    }
    // --help shows examples.
    let help = ok(
        &cli(cwd, "http://127.0.0.1:9", None, &["--help"]),
        "plexe --help",
    );
    assert!(
        help.contains("Examples:") && help.contains("plexe predict"),
        "{help}"
    );
    let help = ok(
        &cli(cwd, "http://127.0.0.1:9", None, &["predict", "--help"]),
        "plexe predict --help",
    );
    assert!(help.contains("-o predicted.csv"), "{help}");
}

/// The README's command-line example, run as written (bash, stop at the first failure) in a
/// folder with `titanic.csv` and a `plexe serve` on `plexe-data` there.
#[test]
fn the_readme_example_runs() {
    let work = tempfile::tempdir().expect("tempdir");
    let cwd = work.path();
    std::fs::copy(titanic(), cwd.join("titanic.csv")).expect("copy");
    let server = Server::start_in(&cwd.join("plexe-data"));
    let script = readme_block("### Command-line client", "sh");
    let bin = Path::new(PLEXE).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(cwd)
        .env("PATH", path)
        .env("PLEXE_URL", &server.url)
        .env("XDG_CONFIG_HOME", cwd.join("no-config"))
        .env_remove("PLEXE_API_KEY")
        .env_remove("PLEXE_CONFIG")
        .output()
        .expect("bash");
    let stdout = ok(&output, "the README example");
    assert!(
        stdout.contains("Uploaded titanic.csv as dataset ds_"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Deployed titanic v1.0 to production"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Predicted 1309 rows in 1 batch into predicted.csv"),
        "{stdout}"
    );
    assert!(stdout.contains("Store the api_key now"), "{stdout}");
    assert!(cwd.join("predicted.csv").is_file());
    assert!(cwd.join("titanic.onnx").is_file());
}
