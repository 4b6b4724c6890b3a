//! The real `plexe serve` killed with SIGKILL in the middle of a build: after a restart on the
//! same data directory the build is picked up again and finishes READY.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLEXE: &str = env!("CARGO_BIN_EXE_plexe");

struct Server {
    child: Child,
    url: String,
    banner: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only the test's own child; a no-op once it has exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path) -> Server {
    let dir = data_dir.to_str().expect("utf-8 temp path");
    let mut child = Command::new(PLEXE)
        .args(["serve", "--port", "0", "--data-dir", dir])
        .env_remove("PLEXE_BACKEND")
        .env_remove("PLEXE_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting plexe serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = String::new();
    loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("plexe serve did not print where it listens within 60 s:\n{banner}");
        };
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.split("plexe listening on ").nth(1) {
            let url = rest.split_whitespace().next().expect("url").to_owned();
            return Server { child, url, banner };
        }
    }
}

/// A classification table big enough that its build takes a moment.
fn table(rows: usize) -> String {
    let mut out = String::from("a,b,c,label\n");
    let mut x: u64 = 7;
    for _ in 0..rows {
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((x >> 33) % 1000) as f64 / 10.0
        };
        let (a, b, c) = (next(), next(), next());
        let label = if a + b * 0.5 > 60.0 + c * 0.2 {
            "high"
        } else {
            "low"
        };
        out.push_str(&format!("{a},{b},{c},{label}\n"));
    }
    out
}

async fn status(client: &reqwest::Client, url: &str, key: &str) -> Value {
    client
        .get(format!("{url}/models/recover/v1.0/status"))
        .bearer_auth(key)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_finishes_the_build_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let server = start(dir.path());
    let key = std::fs::read_to_string(dir.path().join("admin.key"))
        .expect("admin.key")
        .trim()
        .to_owned();

    let uploaded: Value = client
        .post(format!("{}/datasets?name=levels", server.url))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(table(4000))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("dataset JSON");
    let dataset_id = uploaded["dataset_id"].as_str().expect("dataset_id");
    let response = client
        .post(format!("{}/models/recover", server.url))
        .bearer_auth(&key)
        .json(
            &json!({"intent": "predict the label", "dataset_id": dataset_id, "time_budget_s": 30}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job_id = response.json::<Value>().await.expect("202 JSON")["job_id"]
        .as_str()
        .expect("job_id")
        .to_owned();

    // Kill it as soon as the build is under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(&client, &server.url, &key).await;
        if s["status"] == "BUILDING" {
            break;
        }
        assert_ne!(
            s["status"], "READY",
            "the build finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "the build never started: {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut server = server;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    drop(server);

    let server = start(dir.path());
    assert!(
        server.banner.contains("Resuming 1 build"),
        "the restart says it resumes the build:\n{}",
        server.banner
    );
    let s = status(&client, &server.url, &key).await;
    assert_ne!(s["status"], "ERROR", "{s}");
    let deadline = Instant::now() + Duration::from_secs(240);
    let done = loop {
        let s = status(&client, &server.url, &key).await;
        if s["status"] == "READY" || s["status"] == "ERROR" {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the build did not finish after restart: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "READY", "{done}");
    assert_eq!(done["build_progress"], 100);
    let logs: Value = client
        .get(format!(
            "{}/models/build-logs?job_id={job_id}&limit=100",
            server.url
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("logs JSON");
    let messages: Vec<&str> = logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["message"].as_str().unwrap_or(""))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("(attempt 2 of 3)")),
        "the second attempt is in the log: {messages:#?}"
    );
}
