//! Arbitrary bytes → `read_csv` → `profile` → `preview_rows`: must never panic, and whatever
//! is accepted must be a consistent table whose profile serializes.
//!
//! How to run (stable toolchain; cargo-fuzz needs `-Z` flags, hence RUSTC_BOOTSTRAP):
//!
//! ```sh
//! cargo install cargo-fuzz                       # once
//! cd shared/fuzz
//! RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=/work/targets/fuzz \
//!   nice -n 19 cargo fuzz run csv_ingest -- -max_total_time=660 -max_len=65536
//! ```
//!
//! Crashes land in shared/fuzz/artifacts/csv_ingest/ (git-ignored); add each one to
//! shared/tests/ingest_corpus.rs once fixed.
//!
//! The ingest module is compiled directly from its source (`#[path]` below) instead of through
//! the `shared` crate: it only uses `crate::ingest::…` and external crates, and this spares the
//! fuzz build instrumenting all of `shared`'s other dependencies (AWS SDK, tract, axum, …).

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/ingest/mod.rs"]
mod ingest;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = ingest::read_csv(std::io::Cursor::new(data)) else {
        return;
    };
    assert!(table.n_rows > 0 && !table.columns.is_empty());
    for column in &table.columns {
        assert_eq!(column.data.len(), table.n_rows, "column {} has the wrong length", column.name);
    }
    let profile = ingest::profile(&table);
    assert_eq!(profile.len(), table.columns.len());
    for p in &profile {
        assert!(p.missing <= table.n_rows && p.unique <= table.n_rows - p.missing);
    }
    serde_json::to_string(&profile).expect("a profile always serializes");
    let rows = ingest::preview_rows(&table, 20);
    assert_eq!(rows.len(), table.n_rows.min(20));
});
