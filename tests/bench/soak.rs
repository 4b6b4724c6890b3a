//! Bench: a soak of the local server under mixed traffic.
//!
//! Starts the real `plexe serve` (`--plexe PATH`, default: `plexe` beside this binary), makes
//! an enterprise account (unmetered, so the limits do not shape the traffic), builds and
//! deploys a small model, then for `--seconds` (default 600) keeps `--connections` (default 64)
//! clients busy on loopback, each picking its next request at random:
//! - 70% single-row `infer`, 8% batch `predictions` of 100 rows,
//! - 16% lists (`/models`, `/datasets`, `/api-keys`, the model's versions),
//! - 4% a small CSV upload (`POST /datasets`) followed by its deletion,
//! - 2% a look at the model (`describe`, `status`),
//!
//! while one more client starts a build (5 s budget) every 20 s and deletes the one before.
//! The server's RSS is sampled every second. It reports requests and errors per kind, latency
//! percentiles, RSS at the end of the warm-up (`--warmup-seconds`, default 60) and its highest
//! value afterwards, and checks: no 5xx, no transport error, RSS growth after the warm-up at
//! most 20%. Prints one JSON document (also written to `--out FILE`); exits non-zero when a
//! check fails.
//!
//! Run: `cargo build --release -p functions --bin plexe -p integration-tests --bin bench-soak
//! && target/release/bench-soak --out soak.json`

use integration_tests::serve_process::{ServeProcess, deploy_small_model, plexe_binary};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RSS_GROWTH_LIMIT: f64 = 0.20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let number = |name: &str, default: u64| {
        flag(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let settings = Settings {
        seconds: number("--seconds", 600),
        warmup_seconds: number("--warmup-seconds", 60),
        connections: number("--connections", 64) as usize,
    };
    let report = plexe_binary(flag("--plexe")).and_then(|plexe| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(run(&plexe, &settings))
    });
    match report {
        Ok(report) => {
            println!("{report:#}");
            if let Some(out) = flag("--out")
                && let Err(e) = std::fs::write(&out, format!("{report:#}\n"))
            {
                eprintln!("bench-soak: writing {out}: {e}");
                return ExitCode::FAILURE;
            }
            if report["passed"] == true {
                ExitCode::SUCCESS
            } else {
                eprintln!("bench-soak: a check failed (see the report)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("bench-soak: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    seconds: u64,
    warmup_seconds: u64,
    connections: usize,
}

/// What one kind of request saw.
#[derive(Default)]
struct KindStats {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<&'static str, KindStats>,
}

impl Stats {
    fn record(&mut self, kind: &'static str, outcome: Result<u16, String>, took: Duration) {
        let stats = self.kinds.entry(kind).or_default();
        match outcome {
            Ok(status) => {
                *stats.statuses.entry(status).or_default() += 1;
                stats.latencies_us.push(took.as_micros() as u64);
            }
            Err(e) => {
                if stats.transport_errors < 3 {
                    eprintln!("bench-soak: {kind}: {e}");
                }
                stats.transport_errors += 1;
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A small deterministic generator per client, so runs are comparable.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn status(&self, request: reqwest::RequestBuilder) -> Result<u16, String> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        response.bytes().await.map_err(|e| e.to_string())?;
        Ok(status)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }
}

fn batch_body(rows: usize, draw: &mut Draw) -> Value {
    let plans = ["basic", "plus", "premium"];
    Value::Array(
        (0..rows)
            .map(|_| {
                json!({
                    "a": (draw.next() % 1000) as f64 / 100.0,
                    "b": (draw.next() % 500) as f64 / 100.0,
                    "plan": plans[(draw.next() % 3) as usize],
                })
            })
            .collect(),
    )
}

/// One request of the mix; returns its kind and outcome.
async fn one_request(client: &Client, draw: &mut Draw) -> (&'static str, Result<u16, String>) {
    let pick = draw.next() % 100;
    match pick {
        0..70 => {
            let row = batch_body(1, draw)[0].clone();
            let request = client.post("/models/soak/latest/infer").json(&row);
            ("infer", client.status(request).await)
        }
        70..78 => {
            let rows = batch_body(100, draw);
            let request = client.post("/models/soak/latest/predictions").json(&rows);
            ("batch_100", client.status(request).await)
        }
        78..94 => {
            let path = match pick % 4 {
                0 => "/models?limit=20",
                1 => "/datasets?limit=20",
                2 => "/api-keys",
                _ => "/models/soak/versions",
            };
            ("list", client.status(client.get(path)).await)
        }
        94..98 => {
            let csv = integration_tests::serve_process::small_training_csv(200);
            let name = format!("soak-upload-{}", draw.next());
            let request = client
                .post(&format!("/datasets?name={name}"))
                .header("content-type", "text/csv")
                .body(csv);
            let response = match request.bearer_auth(&client.key).send().await {
                Ok(response) => response,
                Err(e) => return ("upload", Err(e.to_string())),
            };
            let status = response.status().as_u16();
            let body: Value = match response.json().await {
                Ok(body) => body,
                Err(e) => return ("upload", Err(e.to_string())),
            };
            if let Some(id) = body["dataset_id"].as_str() {
                let delete = client.http.delete(format!("{}/datasets/{id}", client.base));
                if let Err(e) = client.status(delete).await {
                    return ("upload", Err(e));
                }
            }
            ("upload", Ok(status))
        }
        _ => {
            let path = if pick.is_multiple_of(2) {
                "/models/soak/latest/describe"
            } else {
                "/models/soak/v1.0/status"
            };
            ("model_view", client.status(client.get(path)).await)
        }
    }
}

/// Starts a build every 20 s (on the model `soak-build`, a new version each time) until
/// `until`, deleting the model every few builds so versions do not pile up.
async fn builds(client: Arc<Client>, dataset_id: String, until: Instant, stats: Arc<Mutex<Stats>>) {
    let mut round = 0u64;
    while Instant::now() < until {
        let name = format!("soak-build-{}", round / 5);
        if round.is_multiple_of(5) && round > 0 {
            let previous = format!("soak-build-{}", round / 5 - 1);
            let started = Instant::now();
            let delete = client
                .http
                .delete(format!("{}/models/{previous}", client.base));
            let outcome = client.status(delete).await;
            if let Ok(mut stats) = stats.lock() {
                stats.record("build_delete", outcome, started.elapsed());
            }
        }
        let started = Instant::now();
        let request = client.post(&format!("/models/{name}")).json(&json!({
            "intent": "predict label",
            "dataset_id": dataset_id,
            "time_budget_s": 5,
        }));
        let outcome = client.status(request).await;
        if let Ok(mut stats) = stats.lock() {
            stats.record("build_start", outcome, started.elapsed());
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
}

async fn run(plexe: &std::path::Path, settings: &Settings) -> Result<Value, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = ServeProcess::start(plexe, work.path(), &[])?;
    let key = server.account_key("soak", "enterprise")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(settings.connections)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    deploy_small_model(&http, &server.base_url, &key, "soak").await?;
    let client = Arc::new(Client {
        http,
        base: server.base_url.clone(),
        key,
    });
    let dataset: Value = client
        .post("/datasets?name=soak-build")
        .bearer_auth(&client.key)
        .header("content-type", "text/csv")
        .body(integration_tests::serve_process::small_training_csv(400))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let dataset_id = dataset["dataset_id"]
        .as_str()
        .ok_or_else(|| format!("no dataset_id in {dataset}"))?
        .to_owned();

    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(settings.seconds);
    let mut tasks = Vec::new();
    for i in 0..settings.connections {
        let client = client.clone();
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            let mut draw = Draw(0x5eed + i as u64);
            while Instant::now() < until {
                let t = Instant::now();
                let (kind, outcome) = one_request(&client, &mut draw).await;
                if let Ok(mut stats) = stats.lock() {
                    stats.record(kind, outcome, t.elapsed());
                }
            }
        }));
    }
    tasks.push(tokio::spawn(builds(
        client.clone(),
        dataset_id,
        until,
        stats.clone(),
    )));

    let mut samples = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, rss) = server.memory_mb()?;
        samples.push((started.elapsed().as_secs_f64(), rss));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let warm = settings.warmup_seconds as f64;
    let at_warmup = samples
        .iter()
        .find(|(t, _)| *t >= warm)
        .map(|s| s.1)
        .unwrap_or(0.0);
    let highest_after = samples
        .iter()
        .filter(|(t, _)| *t >= warm)
        .map(|s| s.1)
        .fold(0.0, f64::max);
    let final_rss = samples.last().map(|s| s.1).unwrap_or(0.0);
    let growth = if at_warmup > 0.0 {
        highest_after / at_warmup - 1.0
    } else {
        f64::INFINITY
    };

    // Asked before taking the lock: a std mutex guard must not live across an await.
    let health = client
        .get("/health")
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    let stats = stats.lock().map_err(|e| e.to_string())?;
    let mut kinds = serde_json::Map::new();
    let (mut total, mut server_errors, mut transport_errors) = (0u64, 0u64, 0u64);
    for (kind, s) in &stats.kinds {
        let mut sorted = s.latencies_us.clone();
        sorted.sort_unstable();
        let count: u64 = s.statuses.values().sum();
        total += count;
        server_errors += s
            .statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, n)| n)
            .sum::<u64>();
        transport_errors += s.transport_errors;
        kinds.insert(
            (*kind).to_owned(),
            json!({
                "requests": count,
                "per_second": count as f64 / elapsed,
                "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "transport_errors": s.transport_errors,
                "p50_ms": percentile(&sorted, 0.50) as f64 / 1000.0,
                "p99_ms": percentile(&sorted, 0.99) as f64 / 1000.0,
                "max_ms": sorted.last().copied().unwrap_or(0) as f64 / 1000.0,
            }),
        );
    }
    let passed =
        server_errors == 0 && transport_errors == 0 && growth <= RSS_GROWTH_LIMIT && health == 200;
    Ok(json!({
        "bench": "soak_local",
        "server": plexe.display().to_string(),
        "seconds": elapsed,
        "connections": settings.connections,
        "requests": total,
        "requests_per_second": total as f64 / elapsed,
        "server_errors_5xx": server_errors,
        "transport_errors": transport_errors,
        "kinds": kinds,
        "rss_at_warmup_end_mb": at_warmup,
        "rss_highest_after_warmup_mb": highest_after,
        "rss_final_mb": final_rss,
        "rss_growth_after_warmup": growth,
        "rss_growth_limit": RSS_GROWTH_LIMIT,
        "rss_samples_mb": samples.iter().step_by(10).map(|s| json!([s.0.round(), s.1])).collect::<Vec<_>>(),
        "health_after": health,
        "passed": passed,
    }))
}
