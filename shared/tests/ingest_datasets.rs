//! Every benchmark dataset parses with the row count from its manifest, and known columns get
//! the expected types and missing counts.

use std::path::PathBuf;

use shared::ingest::{ColumnType, Table, preview_rows, profile, read_csv_path};

fn datasets_dir() -> PathBuf {
    // shared/ → repo → ../shared/datasets (the checkout sits beside shared/, in CI too);
    // PLEXE_DATASETS_DIR overrides it for checkouts elsewhere (e.g. a git worktree).
    let dir = std::env::var_os("PLEXE_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"));
    assert!(
        dir.join("manifest.json").is_file(),
        "datasets not found at {} (expected <repo>/../shared/datasets with manifest.json, or set \
         PLEXE_DATASETS_DIR)",
        dir.display()
    );
    dir
}

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(datasets_dir().join("manifest.json"))
        .expect("manifest.json readable");
    let m: serde_json::Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    m["datasets"]
        .as_array()
        .expect("manifest lists datasets")
        .clone()
}

fn load(name: &str) -> Table {
    read_csv_path(&datasets_dir().join(format!("{name}.csv")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn kind(t: &Table, column: &str) -> ColumnType {
    t.column(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .kind
}

fn missing(t: &Table, column: &str) -> usize {
    let c = t
        .column(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    (0..t.n_rows).filter(|&r| c.data.is_missing(r)).count()
}

#[test]
fn every_dataset_matches_its_manifest() {
    let datasets = manifest();
    assert!(!datasets.is_empty());
    for d in datasets {
        let name = d["name"].as_str().expect("name");
        let t = load(name);
        assert_eq!(
            t.n_rows as u64,
            d["rows"].as_u64().expect("rows"),
            "{name} rows"
        );
        assert_eq!(
            t.columns.len() as u64,
            d["columns"].as_u64().expect("columns"),
            "{name} columns"
        );
        for (column, count) in d["columns_with_missing"]
            .as_object()
            .expect("columns_with_missing")
        {
            assert_eq!(
                missing(&t, column) as u64,
                count.as_u64().expect("count"),
                "{name}.{column} missing"
            );
        }
        for column in d["categorical_string_features"]
            .as_array()
            .expect("categorical list")
        {
            let column = column.as_str().expect("column name");
            assert_eq!(kind(&t, column), ColumnType::String, "{name}.{column}");
        }
        let target = d["target"].as_str().expect("target");
        assert!(t.column(target).is_some(), "{name} target {target}");
        // Profile and preview work on every dataset and agree with the table.
        let p = profile(&t);
        assert_eq!(p.len(), t.columns.len());
        for (cp, c) in p.iter().zip(&t.columns) {
            assert_eq!(
                cp.missing,
                missing(&t, &c.name),
                "{name}.{} profile missing",
                c.name
            );
        }
        assert_eq!(preview_rows(&t, 20).len(), 20.min(t.n_rows));
    }
}

#[test]
fn known_columns_have_known_types() {
    let titanic = load("titanic");
    assert_eq!(kind(&titanic, "age"), ColumnType::Float);
    assert_eq!(missing(&titanic, "age"), 263);
    assert_eq!(kind(&titanic, "sex"), ColumnType::String);
    assert_eq!(kind(&titanic, "sibsp"), ColumnType::Integer);

    let diamonds = load("diamonds");
    assert_eq!(kind(&diamonds, "carat"), ColumnType::Float);
    assert_eq!(kind(&diamonds, "cut"), ColumnType::String);
    assert_eq!(kind(&diamonds, "price"), ColumnType::Integer);
    let cut = profile(&diamonds)
        .into_iter()
        .find(|p| p.name == "cut")
        .expect("cut profiled");
    assert_eq!(cut.unique, 5);
    let top = cut.top_values.expect("string columns list top values");
    assert_eq!(serde_json::to_value(&top[0].value).unwrap(), "Ideal");
    assert!(top.windows(2).all(|w| w[0].count >= w[1].count));

    let telco = load("telco_churn");
    assert_eq!(kind(&telco, "total_charges"), ColumnType::Float);
}
