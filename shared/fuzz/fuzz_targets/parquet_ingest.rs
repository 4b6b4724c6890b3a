//! Arbitrary bytes → `read_parquet` → `profile` → `preview_rows`: must never panic (decoder
//! panics are caught and reported as corrupt Parquet, so a crash here is a real bug).
//!
//! How to run: as csv_ingest (see that file), with `cargo fuzz run parquet_ingest`. Seeding the
//! corpus with a few real Parquet files (corpus/parquet_ingest/) helps it get past the footer.
//!
//! The ingest module is compiled directly from its source; see csv_ingest.rs for why.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/ingest/mod.rs"]
mod ingest;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = ingest::read_parquet(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    for column in &table.columns {
        assert_eq!(column.data.len(), table.n_rows, "column {} has the wrong length", column.name);
    }
    let profile = ingest::profile(&table);
    serde_json::to_string(&profile).expect("a profile always serializes");
    ingest::preview_rows(&table, 20);
});
