//! One behaviour suite for the storage ports, run against every backend: the embedded adapters
//! (SQLite file, blob folder, SQLite queue) and the AWS adapters (DynamoDB, S3, SQS on moto).
//! The `contract!` macro instantiates each behaviour per backend; behaviours that only one
//! backend has (upload tokens, in-flight recovery) are below it.

use bytes::Bytes;
use futures::future::join_all;
use serde_json::json;
use shared::config::Backends;
use shared::ports::{Condition, Item, Store, StoreError, WriteOp};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn now() -> i64 {
    shared::ids::now_epoch()
}

// ---------------------------------------------------------------- store

async fn store_round_trip(b: &Backends) {
    let s = &b.store;
    assert!(s.ping().await.is_ok());
    assert_eq!(s.get("acct#1", "profile").await.unwrap(), None);

    let rev = s
        .put(
            Item::new("acct#1", "profile", json!({"name": "Ada", "n": [1, 2]})),
            Condition::None,
        )
        .await
        .unwrap();
    assert_eq!(rev, 1);
    let got = s
        .get("acct#1", "profile")
        .await
        .unwrap()
        .expect("stored item");
    assert_eq!(got.data, json!({"name": "Ada", "n": [1, 2]}));
    assert_eq!(
        (got.pk.as_str(), got.sk.as_str(), got.rev, got.expires_at),
        ("acct#1", "profile", 1, None)
    );

    let ttl = now() + 3600;
    let rev = s
        .put(
            Item::new("acct#1", "profile", json!("v2")).with_ttl(ttl),
            Condition::None,
        )
        .await
        .unwrap();
    assert_eq!(rev, 2, "every put bumps the revision");
    let got = s.get("acct#1", "profile").await.unwrap().unwrap();
    assert_eq!(
        (got.data, got.rev, got.expires_at),
        (json!("v2"), 2, Some(ttl))
    );

    // Another sort key and another partition are separate items.
    assert_eq!(s.get("acct#1", "profile2").await.unwrap(), None);
    assert_eq!(s.get("acct#2", "profile").await.unwrap(), None);

    s.delete("acct#1", "profile", Condition::None)
        .await
        .unwrap();
    assert_eq!(s.get("acct#1", "profile").await.unwrap(), None);
    s.delete("acct#1", "profile", Condition::None)
        .await
        .expect("deleting an absent item succeeds");
}

async fn store_conditional_writes(b: &Backends) {
    let s = &b.store;
    let item = || Item::new("job#1", "state", json!({"status": "PENDING"}));

    assert!(matches!(
        s.put(item(), Condition::Exists).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(matches!(
        s.put(item(), Condition::Revision(0)).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(s.put(item(), Condition::Absent).await.unwrap(), 1);
    assert!(matches!(
        s.put(item(), Condition::Absent).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(s.put(item(), Condition::Exists).await.unwrap(), 2);

    // Compare-and-set: only the current revision wins, and a failed write changes nothing.
    let claimed = Item::new("job#1", "state", json!({"status": "RUNNING"}));
    assert!(matches!(
        s.put(claimed.clone(), Condition::Revision(1)).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(
        s.get("job#1", "state").await.unwrap().unwrap().data,
        json!({"status": "PENDING"})
    );
    assert_eq!(s.put(claimed, Condition::Revision(2)).await.unwrap(), 3);
    assert_eq!(
        s.get("job#1", "state").await.unwrap().unwrap().data,
        json!({"status": "RUNNING"})
    );

    // Conditional deletes.
    assert!(matches!(
        s.delete("job#1", "state", Condition::Revision(2)).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(matches!(
        s.delete("job#1", "state", Condition::Absent).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(s.get("job#1", "state").await.unwrap().is_some());
    s.delete("job#1", "state", Condition::Revision(3))
        .await
        .unwrap();
    assert!(matches!(
        s.delete("job#1", "state", Condition::Exists).await,
        Err(StoreError::ConditionFailed)
    ));
}

async fn store_cas_race_has_one_winner(b: &Backends) {
    let s = &b.store;
    let rev = s
        .put(
            Item::new("job#race", "state", json!({"owner": null})),
            Condition::Absent,
        )
        .await
        .unwrap();
    let attempts = (0..8).map(|worker| {
        let s = Arc::clone(s);
        async move {
            let claim = Item::new("job#race", "state", json!({ "owner": worker }));
            (worker, s.put(claim, Condition::Revision(rev)).await)
        }
    });
    let results = join_all(attempts.map(tokio::spawn)).await;
    let mut winners = Vec::new();
    for r in results {
        let (worker, outcome) = r.unwrap();
        match outcome {
            Ok(new_rev) => winners.push((worker, new_rev)),
            Err(StoreError::ConditionFailed) => {}
            Err(e) => panic!("unexpected error in the race: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one compare-and-set wins: {winners:?}"
    );
    let (worker, new_rev) = winners[0];
    let got = s.get("job#race", "state").await.unwrap().unwrap();
    assert_eq!((got.data, got.rev), (json!({ "owner": worker }), new_rev));
    assert_eq!(new_rev, rev + 1);
}

async fn store_counter_is_atomic(b: &Backends) {
    let s = &b.store;
    let window_end = now() + 120;
    let increments = (0..50).map(|_| {
        let s = Arc::clone(s);
        tokio::spawn(async move {
            s.increment("rate#key_1", "window#1", 1, Some(window_end))
                .await
        })
    });
    let mut values: Vec<i64> = join_all(increments)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=50).collect::<Vec<_>>(),
        "each increment sees its own distinct value"
    );
    assert_eq!(
        s.get("rate#key_1", "window#1").await.unwrap().unwrap().data,
        json!(50),
        "concurrent increments sum exactly"
    );
    assert_eq!(
        s.increment("rate#key_1", "window#1", 5, Some(window_end))
            .await
            .unwrap(),
        55
    );
    assert_eq!(
        s.increment("rate#key_1", "window#1", -10, Some(window_end))
            .await
            .unwrap(),
        45
    );
    // The counter is an item like any other: readable, with the TTL it was created with.
    let item = s.get("rate#key_1", "window#1").await.unwrap().unwrap();
    assert_eq!((item.data, item.expires_at), (json!(45), Some(window_end)));
    // Counters without TTL work too, and start at delta.
    assert_eq!(
        s.increment("rate#key_1", "total", 7, None).await.unwrap(),
        7
    );
}

async fn store_query_pages(b: &Backends) {
    let s = &b.store;
    // Zero-padded so sort-key order is numeric order; neighbours outside the prefix and in
    // another partition must not leak in.
    for i in 0..23 {
        s.put(
            Item::new("acct#q", format!("model#{i:03}"), json!({ "i": i })),
            Condition::None,
        )
        .await
        .unwrap();
    }
    s.put(Item::new("acct#q", "modem", json!(0)), Condition::None)
        .await
        .unwrap();
    s.put(Item::new("acct#q", "job#001", json!(0)), Condition::None)
        .await
        .unwrap();
    s.put(
        Item::new("acct#other", "model#000", json!(0)),
        Condition::None,
    )
    .await
    .unwrap();

    for ascending in [true, false] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s
                .query("acct#q", "model#", ascending, 5, cursor.as_deref())
                .await
                .unwrap();
            assert!(page.items.len() <= 5);
            pages += 1;
            assert!(pages <= 10, "pagination does not terminate");
            for it in &page.items {
                assert_eq!(it.pk, "acct#q");
                seen.push(it.data["i"].as_i64().expect("page holds only model items"));
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut expected: Vec<i64> = (0..23).collect();
        if !ascending {
            expected.reverse();
        }
        assert_eq!(
            seen, expected,
            "ascending={ascending}: every item once, in order"
        );
    }

    // A limit larger than the result set returns everything and no cursor.
    let page = s.query("acct#q", "model#", true, 1000, None).await.unwrap();
    assert_eq!((page.items.len(), page.cursor), (23, None));
    // Empty prefix: the whole partition.
    let page = s.query("acct#q", "", true, 1000, None).await.unwrap();
    assert_eq!(page.items.len(), 25);
    assert_eq!(page.items[0].sk, "job#001");
    let page = s.query("acct#none", "", true, 10, None).await.unwrap();
    assert!(page.items.is_empty() && page.cursor.is_none());
    assert!(
        s.query("acct#q", "model#", true, 5, Some("%%garbage%%"))
            .await
            .is_err()
    );
}

async fn store_transactions_are_all_or_nothing(b: &Backends) {
    let s = &b.store;
    s.put(
        Item::new("acct#t", "quota", json!({"models": 1})),
        Condition::None,
    )
    .await
    .unwrap();
    s.put(Item::new("acct#t", "stale", json!(1)), Condition::None)
        .await
        .unwrap();

    // One failing condition (the model already exists) cancels every write.
    s.put(
        Item::new("acct#t", "model#taken", json!(1)),
        Condition::None,
    )
    .await
    .unwrap();
    let failing = vec![
        WriteOp::Put {
            item: Item::new("acct#t", "job#1", json!("queued")),
            condition: Condition::Absent,
        },
        WriteOp::Delete {
            pk: "acct#t".into(),
            sk: "stale".into(),
            condition: Condition::Exists,
        },
        WriteOp::Put {
            item: Item::new("acct#t", "model#taken", json!(2)),
            condition: Condition::Absent,
        },
    ];
    assert!(matches!(
        s.transact(failing).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(s.get("acct#t", "job#1").await.unwrap(), None);
    assert!(s.get("acct#t", "stale").await.unwrap().is_some());
    assert_eq!(
        s.get("acct#t", "model#taken").await.unwrap().unwrap().data,
        json!(1)
    );

    // A failing check alone also cancels.
    let checked = vec![
        WriteOp::Put {
            item: Item::new("acct#t", "job#2", json!("queued")),
            condition: Condition::None,
        },
        WriteOp::Check {
            pk: "acct#t".into(),
            sk: "quota".into(),
            condition: Condition::Revision(7),
        },
    ];
    assert!(matches!(
        s.transact(checked).await,
        Err(StoreError::ConditionFailed)
    ));
    assert_eq!(s.get("acct#t", "job#2").await.unwrap(), None);

    // All conditions hold: every write lands.
    let ok = vec![
        WriteOp::Put {
            item: Item::new("acct#t", "job#1", json!("queued")),
            condition: Condition::Absent,
        },
        WriteOp::Put {
            item: Item::new("acct#t", "model#new", json!("pending")),
            condition: Condition::Absent,
        },
        WriteOp::Delete {
            pk: "acct#t".into(),
            sk: "stale".into(),
            condition: Condition::Exists,
        },
        WriteOp::Check {
            pk: "acct#t".into(),
            sk: "quota".into(),
            condition: Condition::Revision(1),
        },
    ];
    s.transact(ok).await.unwrap();
    assert_eq!(
        s.get("acct#t", "job#1").await.unwrap().unwrap().data,
        json!("queued")
    );
    assert_eq!(s.get("acct#t", "model#new").await.unwrap().unwrap().rev, 1);
    assert_eq!(s.get("acct#t", "stale").await.unwrap(), None);
    s.transact(Vec::new())
        .await
        .expect("an empty transaction is a no-op");
}

async fn store_expired_items_are_invisible(b: &Backends) {
    let s = &b.store;
    let past = now() - 5;
    s.put(
        Item::new("sess#1", "a-live", json!(1)).with_ttl(now() + 3600),
        Condition::None,
    )
    .await
    .unwrap();
    s.put(
        Item::new("sess#1", "b-dead", json!(2)).with_ttl(past),
        Condition::None,
    )
    .await
    .unwrap();
    s.put(Item::new("sess#1", "c-live", json!(3)), Condition::None)
        .await
        .unwrap();

    assert_eq!(s.get("sess#1", "b-dead").await.unwrap(), None);
    let page = s.query("sess#1", "", true, 10, None).await.unwrap();
    let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(sks, ["a-live", "c-live"]);
    // Paging over an expired item neither returns it nor stops early.
    let first = s.query("sess#1", "", true, 1, None).await.unwrap();
    assert_eq!(first.items[0].sk, "a-live");
    let second = s
        .query("sess#1", "", true, 1, first.cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].sk, "c-live");

    // An expired item counts as absent for conditions.
    assert!(matches!(
        s.put(Item::new("sess#1", "b-dead", json!(9)), Condition::Exists)
            .await,
        Err(StoreError::ConditionFailed)
    ));
    s.put(Item::new("sess#1", "b-dead", json!(9)), Condition::Absent)
        .await
        .unwrap();
    assert_eq!(
        s.get("sess#1", "b-dead").await.unwrap().unwrap().data,
        json!(9)
    );

    // An expired counter restarts from delta with the new TTL.
    assert_eq!(s.increment("rate#e", "w", 4, Some(past)).await.unwrap(), 4);
    assert_eq!(
        s.increment("rate#e", "w", 4, Some(past)).await.unwrap(),
        4,
        "expired counter restarts"
    );
    let later = now() + 60;
    assert_eq!(s.increment("rate#e", "w", 1, Some(later)).await.unwrap(), 1);
    assert_eq!(
        s.increment("rate#e", "w", 1, Some(later + 999))
            .await
            .unwrap(),
        2
    );
    let counter = s.get("rate#e", "w").await.unwrap().unwrap();
    assert_eq!(
        counter.expires_at,
        Some(later),
        "a live counter keeps its window"
    );
}

// ---------------------------------------------------------------- blobs

async fn blobs_round_trip(b: &Backends) {
    let blobs = &b.blobs;
    let key = "datasets/ds_1/data.csv";
    assert_eq!(blobs.size(key).await.unwrap(), None);
    assert!(matches!(
        blobs.get(key).await,
        Err(shared::ports::BlobError::NotFound(_))
    ));

    let payload = Bytes::from_static(b"a,b\n1,2\n3,4\n");
    blobs.put(key, payload.clone()).await.unwrap();
    assert_eq!(blobs.get(key).await.unwrap(), payload);
    assert_eq!(blobs.size(key).await.unwrap(), Some(payload.len() as u64));

    // Overwrite replaces the whole blob.
    blobs.put(key, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(blobs.get(key).await.unwrap(), Bytes::from_static(b"x"));

    blobs.delete(key).await.unwrap();
    assert_eq!(blobs.size(key).await.unwrap(), None);
    blobs
        .delete(key)
        .await
        .expect("deleting an absent blob succeeds");
    blobs
        .put("", Bytes::new())
        .await
        .expect_err("empty key refused");
    blobs
        .put("../escape", Bytes::new())
        .await
        .expect_err("traversal refused");
}

async fn blobs_files_stream(b: &Backends) {
    let blobs = &b.blobs;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.bin");
    // Over a few MiB and not a multiple of any buffer size, with varied content.
    let content: Vec<u8> = (0..3_000_017u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&src, &content).unwrap();
    blobs
        .put_file("artifacts/m_1/model.onnx", &src)
        .await
        .unwrap();
    assert_eq!(
        blobs.size("artifacts/m_1/model.onnx").await.unwrap(),
        Some(content.len() as u64)
    );

    let dst = dir.path().join("out.bin");
    let n = blobs
        .get_to_file("artifacts/m_1/model.onnx", &dst)
        .await
        .unwrap();
    assert_eq!(n, content.len() as u64);
    assert!(
        std::fs::read(&dst).unwrap() == content,
        "downloaded file differs"
    );
    assert!(matches!(
        blobs
            .get_to_file("artifacts/absent", &dir.path().join("none"))
            .await,
        Err(shared::ports::BlobError::NotFound(_))
    ));
}

async fn blobs_expire_by_age(b: &Backends) {
    let blobs = &b.blobs;
    for key in [
        "idempotency/acct_a/1",
        "idempotency/acct_b/2",
        "datasets/ds_1/data.csv",
    ] {
        blobs.put(key, Bytes::from_static(b"x")).await.unwrap();
    }
    assert_eq!(
        blobs
            .delete_older_than("idempotency/", Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "nothing is an hour old yet"
    );
    // Both stores keep modification times to the second at least.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        blobs
            .delete_older_than("idempotency/", Duration::from_secs(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(blobs.size("idempotency/acct_a/1").await.unwrap(), None);
    assert_eq!(blobs.size("idempotency/acct_b/2").await.unwrap(), None);
    assert_eq!(
        blobs.size("datasets/ds_1/data.csv").await.unwrap(),
        Some(1),
        "only the prefix is swept"
    );
    assert_eq!(
        blobs
            .delete_older_than("nothing-here/", Duration::ZERO)
            .await
            .unwrap(),
        0
    );
}

// ---------------------------------------------------------------- queue

async fn queue_send_receive_ack(b: &Backends) {
    let q = &b.queue;
    let nothing = q
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert!(nothing.is_empty());

    let id_a = q.send(r#"{"job":"a"}"#).await.unwrap();
    let id_b = q.send(r#"{"job":"b"}"#).await.unwrap();
    assert_ne!(id_a, id_b);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.extend(
            q.receive(10, Duration::from_secs(30), Duration::from_secs(1))
                .await
                .unwrap(),
        );
        if got.len() == 2 {
            break;
        }
    }
    let bodies: HashSet<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, HashSet::from([r#"{"job":"a"}"#, r#"{"job":"b"}"#]));
    let ids: HashSet<_> = got.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, HashSet::from([id_a, id_b]));
    assert!(got.iter().all(|m| m.receive_count == 1));

    // Hidden while in flight.
    assert!(
        q.receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    for m in &got {
        q.ack(&m.receipt).await.unwrap();
    }
    assert!(q.dead_letters(10).await.unwrap().is_empty());
}

async fn queue_redelivers_after_visibility_timeout(b: &Backends) {
    let q = &b.queue;
    q.send("job-r").await.unwrap();
    let first = q
        .receive(1, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(
        q.receive(1, Duration::from_secs(1), Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "hidden while in flight"
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = q
        .receive(1, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "redelivered after the visibility timeout");
    assert_eq!(
        (second[0].id.as_str(), second[0].body.as_str()),
        (first[0].id.as_str(), "job-r")
    );
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(
        second[0].receipt, first[0].receipt,
        "a new receipt on every receive"
    );

    q.ack(&second[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        q.receive(1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "acked for good"
    );
}

async fn queue_hands_back_before_the_visibility_timeout(b: &Backends) {
    let q = &b.queue;
    q.send("job-h").await.unwrap();
    let first = q
        .receive(1, Duration::from_secs(3600), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    q.hand_back(&first[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q
        .receive(1, Duration::from_secs(3600), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "visible again at once, not after an hour");
    assert_eq!(
        (again[0].id.as_str(), again[0].receive_count),
        (first[0].id.as_str(), 2)
    );
    // Handed back for a while: hidden until then, then delivered.
    q.hand_back(&again[0].receipt, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        q.receive(1, Duration::from_secs(3600), Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "hidden for the delay"
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let third = q
        .receive(1, Duration::from_secs(3600), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(third.len(), 1, "delivered after the delay");
    q.ack(&third[0].receipt).await.unwrap();
}

async fn queue_redrives_to_dead_letters(b: &Backends) {
    let q = &b.queue;
    q.send("poison").await.unwrap();
    // Visibility 0: visible again at once, so three failed attempts take no waiting.
    for attempt in 1..=3u32 {
        let got = q
            .receive(1, Duration::ZERO, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "attempt {attempt} delivered");
        assert_eq!(got[0].receive_count, attempt);
    }
    let after = q.receive(1, Duration::ZERO, Duration::ZERO).await.unwrap();
    assert!(
        after.is_empty(),
        "a fourth delivery goes to the dead-letter queue instead: {after:?}"
    );
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["poison"]
    );
}

macro_rules! contract {
    ($($behaviour:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let env = integration_tests::embedded_backends("http://127.0.0.1:9");
                    super::$behaviour(&env.backends).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let Some(env) = integration_tests::aws_backends(stringify!($behaviour)).await else { return };
                    super::$behaviour(&env.backends).await;
                }
            )*
        }
    };
}

contract!(
    store_round_trip,
    store_conditional_writes,
    store_cas_race_has_one_winner,
    store_counter_is_atomic,
    store_query_pages,
    store_transactions_are_all_or_nothing,
    store_expired_items_are_invisible,
    blobs_round_trip,
    blobs_files_stream,
    blobs_expire_by_age,
    queue_send_receive_ack,
    queue_redelivers_after_visibility_timeout,
    queue_hands_back_before_the_visibility_timeout,
    queue_redrives_to_dead_letters,
);

// ---------------------------------------------------------------- embedded only

#[tokio::test]
async fn embedded_upload_tokens_round_trip_and_expire() {
    let env = integration_tests::embedded_backends("http://plexe.local:8080/");
    let folder = env
        .backends
        .folder_blobs
        .clone()
        .expect("embedded backend exposes its blob folder");
    let url = env
        .backends
        .blobs
        .presign_put("uploads/up_1/data.csv", Duration::from_secs(600), None)
        .await
        .unwrap();
    let token = url
        .strip_prefix("http://plexe.local:8080/uploads/")
        .expect("upload URL on the public base");
    assert!(
        token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)),
        "URL-safe token {token}"
    );
    assert_eq!(
        folder.verify_upload_token(token).unwrap(),
        ("uploads/up_1/data.csv".to_owned(), None)
    );
    // A declared size travels in the token, under the signature.
    let sized = env
        .backends
        .blobs
        .presign_put(
            "uploads/up_3/data.csv",
            Duration::from_secs(600),
            Some(1234),
        )
        .await
        .unwrap();
    assert_eq!(
        folder
            .verify_upload_token(sized.rsplit_once('/').unwrap().1)
            .unwrap(),
        ("uploads/up_3/data.csv".to_owned(), Some(1234))
    );

    // Tampering with the key or the tag is refused.
    let (payload, tag) = token.split_once('.').unwrap();
    let mut forged_tag = tag.to_owned();
    let last = if forged_tag.ends_with('A') { 'B' } else { 'A' };
    forged_tag.pop();
    forged_tag.push(last);
    assert!(
        folder
            .verify_upload_token(&format!("{payload}.{forged_tag}"))
            .is_err()
    );
    let other = env
        .backends
        .blobs
        .presign_put("uploads/up_2/data.csv", Duration::from_secs(600), None)
        .await
        .unwrap();
    let other_tag = other.rsplit_once('.').unwrap().1;
    assert!(
        folder
            .verify_upload_token(&format!("{payload}.{other_tag}"))
            .is_err()
    );
    assert!(folder.verify_upload_token("garbage").is_err());

    // Expired tokens are refused.
    let expired = env
        .backends
        .blobs
        .presign_put("uploads/up_1/data.csv", Duration::ZERO, None)
        .await
        .unwrap();
    let expired_token = expired.rsplit_once('/').unwrap().1;
    let err = folder.verify_upload_token(expired_token).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // The secret persists: a second process on the same directory accepts the first's tokens,
    // and the secret file is private.
    let again =
        shared::config::Backends::embedded(env.dir.path(), "http://plexe.local:8080").unwrap();
    assert_eq!(
        again
            .folder_blobs
            .unwrap()
            .verify_upload_token(token)
            .unwrap()
            .0,
        "uploads/up_1/data.csv"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(env.dir.path().join("upload.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A different data directory has a different secret.
    let stranger = integration_tests::embedded_backends("http://plexe.local:8080");
    assert!(
        stranger
            .backends
            .folder_blobs
            .unwrap()
            .verify_upload_token(token)
            .is_err()
    );
}

#[tokio::test]
async fn embedded_queue_recovers_in_flight_messages() {
    let env = integration_tests::embedded_backends("http://127.0.0.1:9");
    let q = &env.backends.queue;
    q.send("job-1").await.unwrap();
    q.send("job-2").await.unwrap();
    let running = q
        .receive(1, Duration::from_secs(3600), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(running.len(), 1);

    // A new process on the same file (the old one died mid-job) recovers the in-flight job.
    let restarted =
        shared::config::Backends::embedded(env.dir.path(), "http://127.0.0.1:9").unwrap();
    let queue = restarted
        .embedded_queue
        .expect("embedded backend exposes its queue");
    assert_eq!(queue.recover_in_flight().await.unwrap(), 1);
    let mut bodies: Vec<_> = restarted
        .queue
        .receive(10, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.body, m.receive_count))
        .collect();
    bodies.sort();
    assert_eq!(bodies, [("job-1".to_owned(), 2), ("job-2".to_owned(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_is_shared_between_connections() {
    // Two opens of the same file (as `plexe serve` and `plexe admin` do) count on one counter.
    let env = integration_tests::embedded_backends("http://127.0.0.1:9");
    let other = shared::config::Backends::embedded(env.dir.path(), "http://127.0.0.1:9").unwrap();
    let tasks = (0..40).map(|i| {
        let s = if i % 2 == 0 {
            Arc::clone(&env.backends.store)
        } else {
            Arc::clone(&other.store)
        };
        tokio::spawn(async move { s.increment("rate#x", "w", 1, None).await })
    });
    let mut values: Vec<i64> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (1..=40).collect::<Vec<_>>());
}

/// The folder has no lifecycle rules and SQLite no TTL: `plexe serve`'s sweep removes an
/// idempotency answer once it is older than its record could be (nothing younger), and the
/// items whose TTL has passed.
#[tokio::test]
async fn embedded_sweep_expires_idempotency_answers() {
    let env = integration_tests::embedded_backends("http://127.0.0.1:9");
    let blobs = &env.backends.blobs;
    blobs
        .put("idempotency/acct_a/old", Bytes::from_static(b"x"))
        .await
        .unwrap();
    blobs
        .put("idempotency/acct_a/new", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let old = blobs
        .local_path("idempotency/acct_a/old")
        .expect("a local file");
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    // An item past its TTL, one alive: only the first is purged, and only once.
    let store = &env.backends.store;
    let now = now();
    store
        .put(
            Item::new("p", "gone", json!({})).with_ttl(now - 5),
            Condition::None,
        )
        .await
        .unwrap();
    store
        .put(
            Item::new("p", "kept", json!({})).with_ttl(now + 3600),
            Condition::None,
        )
        .await
        .unwrap();
    let sqlite = env
        .backends
        .embedded_store
        .clone()
        .expect("the SQLite store");
    let report = shared::domain::housekeeping::sweep(blobs.as_ref(), Some(sqlite.as_ref()))
        .await
        .unwrap();
    assert_eq!(report.expired_blobs, 1);
    assert_eq!(report.expired_items, 1);
    assert!(store.get("p", "kept").await.unwrap().is_some());
    let again = shared::domain::housekeeping::sweep(blobs.as_ref(), Some(sqlite.as_ref()))
        .await
        .unwrap();
    assert_eq!(again.expired_items, 0);
    assert_eq!(blobs.size("idempotency/acct_a/old").await.unwrap(), None);
    assert_eq!(blobs.size("idempotency/acct_a/new").await.unwrap(), Some(1));
}

// ---------------------------------------------------------------- AWS only

/// The production bucket (the SAM template) expires the same prefixes, after the same days, as
/// the code's table of them (which tests' buckets and the folder sweep use).
#[test]
fn template_bucket_expires_the_same_prefixes() {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .unwrap();
    let lines: Vec<&str> = template.lines().map(str::trim).collect();
    for (prefix, days) in shared::domain::layout::EXPIRING_PREFIXES {
        let at = lines
            .iter()
            .position(|l| *l == format!("Prefix: {prefix}"))
            .unwrap_or_else(|| panic!("no lifecycle rule for {prefix} in the template"));
        let expiry = lines[at..]
            .iter()
            .find_map(|l| l.strip_prefix("ExpirationInDays: "))
            .unwrap_or_else(|| panic!("the rule for {prefix} sets no expiry"));
        assert_eq!(expiry, days.to_string(), "expiry of {prefix}");
    }
}

/// On S3 the bucket's lifecycle rules expire what the folder sweep removes locally.
#[tokio::test]
async fn s3_bucket_expires_idempotency_answers() {
    let Some(env) = integration_tests::aws_backends("s3_lifecycle").await else {
        return;
    };
    let s3 = shared::config::s3_client(&env.sdk);
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&env.resources.bucket)
        .send()
        .await
        .unwrap();
    for (prefix, days) in shared::domain::layout::EXPIRING_PREFIXES {
        let rule = lifecycle
            .rules()
            .iter()
            .find(|r| {
                r.filter()
                    .and_then(|f| f.prefix())
                    .is_some_and(|p| p == *prefix)
            })
            .unwrap_or_else(|| panic!("no lifecycle rule for {prefix}: {lifecycle:?}"));
        assert_eq!(
            rule.expiration().and_then(|e| e.days()),
            Some(i32::try_from(*days).unwrap())
        );
    }
}

#[tokio::test]
async fn s3_presigned_put_round_trips_over_http() {
    let Some(env) = integration_tests::aws_backends("s3_presigned_put").await else {
        return;
    };
    let url = env
        .backends
        .blobs
        .presign_put("uploads/up_1/data.csv", Duration::from_secs(300), None)
        .await
        .unwrap();
    assert!(
        url.starts_with(&env.endpoint),
        "presigned URL points at the configured endpoint: {url}"
    );
    let body = "x,y\n1,2\n";
    let response = reqwest::Client::new()
        .put(&url)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "PUT to presigned URL: {}",
        response.status()
    );
    assert_eq!(
        env.backends
            .blobs
            .get("uploads/up_1/data.csv")
            .await
            .unwrap(),
        Bytes::from(body)
    );

    // Signed for this key and lifetime (moto does not check signatures, so that is asserted on
    // the URL itself).
    assert!(url.contains("/uploads/up_1/data.csv?"), "{url}");
    assert!(
        url.contains("X-Amz-Expires=300") && url.contains("X-Amz-Signature="),
        "{url}"
    );
}

#[tokio::test]
async fn aws_health_reports_dynamodb() {
    let Some(env) = integration_tests::aws_backends("aws_health").await else {
        return;
    };
    assert_eq!(env.backends.store.backend(), "dynamodb");
    env.backends.store.ping().await.unwrap();
    let missing =
        shared::ports::DynamoStore::new(aws_sdk_dynamodb::Client::new(&env.sdk), "no-such-table");
    assert!(missing.ping().await.is_err());
}
