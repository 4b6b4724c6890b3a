//! A real `plexe serve` process for the benches: started on a temporary data directory, its
//! base URL read from its first line, its admin key from `admin.key`, and its memory read from
//! `/proc` (peak RSS can be reset between measurements).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `plexe` binary: `--plexe PATH` when given, else the one beside the running bench (the
/// same target directory).
pub fn plexe_binary(flag: Option<String>) -> Result<PathBuf, String> {
    let path = match flag {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate this binary: {e}"))?
            .with_file_name("plexe"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no plexe binary at {} (build it: cargo build --workspace --bins, or pass --plexe PATH)",
            path.display()
        ))
    }
}

/// A running `plexe serve`, killed on drop.
pub struct ServeProcess {
    child: Child,
    plexe: PathBuf,
    data_dir: PathBuf,
    pub base_url: String,
    pub admin_key: String,
}

impl ServeProcess {
    /// Starts `plexe serve` on a free loopback port with its data (and temporary files) under
    /// `work`, plus `extra` arguments.
    pub fn start(plexe: &Path, work: &Path, extra: &[&str]) -> Result<ServeProcess, String> {
        let data_dir = work.join("data");
        let mut child = Command::new(plexe)
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(&data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            // Temporary upload files go beside the data, not to a RAM-backed /tmp.
            .env("TMPDIR", work)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut process = ServeProcess {
            child,
            plexe: plexe.to_path_buf(),
            data_dir: data_dir.clone(),
            base_url: String::new(),
            admin_key: String::new(),
        };
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(rest) = line.strip_prefix("plexe listening on ") {
                process.base_url = rest.split_whitespace().next().unwrap_or("").to_owned();
                break;
            }
        }
        if process.base_url.is_empty() {
            return Err("the server did not say where it listens".into());
        }
        process.admin_key = std::fs::read_to_string(data_dir.join("admin.key"))
            .map_err(|e| format!("reading admin.key: {e}"))?
            .trim()
            .to_owned();
        Ok(process)
    }

    /// A new account of `tier` (through `plexe admin`, on the same data dir) and its admin key.
    pub fn account_key(&self, name: &str, tier: &str) -> Result<String, String> {
        let output = Command::new(&self.plexe)
            .args([
                "admin",
                "create-account",
                "--json",
                "--name",
                name,
                "--tier",
                tier,
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("RUST_LOG", "warn")
            .output()
            .map_err(|e| format!("running plexe admin: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "plexe admin create-account failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("plexe admin printed no JSON: {e}"))?;
        printed["api_key"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no api_key in {printed}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `(peak RSS, RSS)` in MB, from `VmHWM` and `VmRSS`.
    pub fn memory_mb(&self) -> Result<(f64, f64), String> {
        memory_mb(self.pid())
    }

    /// Resets the peak RSS to the current RSS (`clear_refs` 5), so the next peak is one
    /// request's.
    pub fn reset_peak(&self) -> Result<(), String> {
        let path = format!("/proc/{}/clear_refs", self.pid());
        std::fs::write(&path, "5").map_err(|e| format!("writing {path}: {e}"))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(VmHWM, VmRSS)` of `pid` in MB.
pub fn memory_mb(pid: u32) -> Result<(f64, f64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .ok_or_else(|| format!("{name} missing from /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// A small binary-classification table (`a`, `b`, `plan` → `label`), deterministic, for the
/// benches that need a built model.
pub fn small_training_csv(rows: usize) -> String {
    let mut state: u64 = 0x5eed_1234;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let plans = ["basic", "plus", "premium"];
    let mut out = String::from("a,b,plan,label\n");
    for _ in 0..rows {
        let a = next() * 10.0;
        let b = next() * 5.0;
        let plan = plans[(next() * 3.0) as usize % 3];
        let label = if a - b + next() * 2.0 > 5.0 {
            "yes"
        } else {
            "no"
        };
        out.push_str(&format!("{a:.3},{b:.3},{plan},{label}\n"));
    }
    out
}

/// The bench command line's value after `name` (`--out FILE`).
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

/// A loopback port free right now, for a server the bench starts (moto, the Python server).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The repository's root (the benches' scripts and venv live under it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared datasets: `PLEXE_DATASETS_DIR`, else `<repo>/../shared/datasets`.
pub fn datasets_dir() -> PathBuf {
    std::env::var_os("PLEXE_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/datasets"))
}

/// Sends `request` and reads its JSON answer; a non-2xx status is an error naming it and the
/// body.
pub async fn json_call(request: reqwest::RequestBuilder) -> Result<serde_json::Value, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// Uploads [`small_training_csv`], builds model `name` from it (a few seconds' budget), waits
/// for it and deploys it: what a bench needs before it can predict.
pub async fn deploy_small_model(
    client: &reqwest::Client,
    base_url: &str,
    key: &str,
    name: &str,
) -> Result<(), String> {
    use serde_json::json;
    let dataset = json_call(
        client
            .post(format!("{base_url}/datasets?name={name}"))
            .bearer_auth(key)
            .header("content-type", "text/csv")
            .body(small_training_csv(500)),
    )
    .await?;
    let body = json!({
        "intent": "predict label",
        "dataset_id": dataset["dataset_id"],
        "time_budget_s": 5,
    });
    json_call(
        client
            .post(format!("{base_url}/models/{name}"))
            .bearer_auth(key)
            .json(&body),
    )
    .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let status = json_call(
            client
                .get(format!("{base_url}/models/{name}/v1.0/status"))
                .bearer_auth(key),
        )
        .await?;
        match status["status"].as_str() {
            Some("READY") => break,
            Some("ERROR") => return Err(format!("the build failed: {status}")),
            _ if std::time::Instant::now() > deadline => {
                return Err(format!("the build did not finish: {status}"));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    json_call(
        client
            .post(format!("{base_url}/models/{name}/deploy"))
            .bearer_auth(key)
            .json(&json!({})),
    )
    .await?;
    Ok(())
}
