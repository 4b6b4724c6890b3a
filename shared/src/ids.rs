//! Prefixed, sortable, unguessable ids (`acct_…`, `key_…`, …) and RFC 3339 timestamps.

use rand::RngExt;

/// A new id: `prefix` + `_` + a ULID (48-bit millisecond time, 80 random bits), lowercase.
pub fn new_id(prefix: &str) -> String {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let random: u128 = rand::rng().random::<u128>() & ((1u128 << 80) - 1);
    let ulid = ulid::Ulid::from_parts(now_ms as u64, random);
    format!("{prefix}_{}", ulid.to_string().to_lowercase())
}

/// Now as RFC 3339 UTC with second precision: `2026-06-15T14:22:03Z`.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())
}

/// Epoch seconds as RFC 3339 UTC with second precision.
pub fn rfc3339(epoch_seconds: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// Now in epoch seconds.
pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_sortable() {
        let a = new_id("job");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("job");
        assert!(a.starts_with("job_") && a.len() == 4 + 26);
        assert_ne!(a, b);
        assert!(a < b, "ids sort by creation time");
    }

    #[test]
    fn rfc3339_is_utc_seconds() {
        assert_eq!(rfc3339(1_781_533_323), "2026-06-15T14:22:03Z");
    }
}
