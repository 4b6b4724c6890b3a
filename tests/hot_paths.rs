//! Hot paths read what they need and no more: listing a page of models reads each model's
//! newest version (and its newest READY one), never every version; `latest` stops at the first
//! READY version; `/health` asks the store once however often it is polled. The reads are
//! counted by a store that passes every call to the real SQLite adapter.

use async_trait::async_trait;
use shared::config::Limits;
use shared::domain::accounts::{self, NewAccount, Tier};
use shared::domain::datasets::{self, DirectUpload};
use shared::domain::layout::ModelName;
use shared::domain::models::builds::{self, BuildSpec, NewModel, Ports, Requester};
use shared::domain::models::{self, ModelListing, VersionRef, VersionStatus, summaries};
use shared::ports::{Condition, Item, Page, Store, StoreError, WriteOp};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The real store, with a count of the items its reads returned and of its pings.
struct CountingStore {
    inner: Arc<dyn Store>,
    items_read: AtomicUsize,
    pings: AtomicUsize,
}

impl CountingStore {
    fn reads(&self) -> usize {
        self.items_read.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.pings.fetch_add(1, Ordering::SeqCst);
        // Slow enough that concurrent health checks overlap.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        self.inner.ping().await
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let item = self.inner.get(pk, sk).await?;
        self.items_read
            .fetch_add(usize::from(item.is_some()), Ordering::SeqCst);
        Ok(item)
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(pk, sk, condition).await
    }
    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        ascending: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        let page = self
            .inner
            .query(pk, sk_prefix, ascending, limit, cursor)
            .await?;
        self.items_read
            .fetch_add(page.items.len(), Ordering::SeqCst);
        Ok(page)
    }
    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.inner.increment(pk, sk, delta, expires_at).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.transact(ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_latest_read_only_what_they_show() {
    let env = integration_tests::embedded_backends("http://127.0.0.1:9");
    let counting = Arc::new(CountingStore {
        inner: env.backends.store.clone(),
        items_read: AtomicUsize::new(0),
        pings: AtomicUsize::new(0),
    });
    let store: &dyn Store = counting.as_ref();
    let blobs = env.backends.blobs.as_ref();
    let (account, _) = accounts::create_account_with_admin_key(
        store,
        NewAccount {
            name: "hot".into(),
            tier: Tier::Enterprise,
            rate_limit_per_minute: None,
        },
    )
    .await
    .expect("account");
    let mut csv = String::from("x,y,label\n");
    for i in 0..60 {
        csv.push_str(&format!(
            "{i},{},{}\n",
            i % 7,
            if i % 3 == 0 { "a" } else { "b" }
        ));
    }
    let dataset = datasets::create_from_direct_upload(
        store,
        blobs,
        &account.account_id,
        DirectUpload {
            bytes: csv.into(),
            content_type: Some("text/csv".into()),
            ..DirectUpload::default()
        },
        Some("hot"),
        None,
    )
    .await
    .expect("dataset");
    // Three models of 30 versions each (nothing trains them: they stay PENDING), version 25 of
    // each then marked READY by hand.
    let limits = Limits {
        concurrent_builds_enterprise: 1000,
        ..Limits::default()
    };
    let who = Requester {
        account: &account,
        key_id: "key_test",
        limits: &limits,
    };
    let ports = Ports {
        store,
        blobs,
        queue: env.backends.queue.as_ref(),
        tasks: None,
    };
    let spec = || BuildSpec {
        intent: Some("predict label".into()),
        dataset_id: Some(dataset.dataset_id.clone()),
        ..BuildSpec::default()
    };
    let names: Vec<ModelName> = ["m-a", "m-b", "m-c"]
        .iter()
        .map(|n| ModelName::new(n).expect("name"))
        .collect();
    for name in &names {
        builds::start_model(ports, who, name, NewModel::default(), spec())
            .await
            .expect("first version");
        for _ in 1..30 {
            builds::start_version(ports, who, name, spec())
                .await
                .expect("next version");
        }
        let mut ready = models::get_version(store, &account.account_id, name, 25)
            .await
            .expect("read")
            .expect("version 25");
        ready.status = VersionStatus::Ready;
        models::put_version(store, &account.account_id, &ready)
            .await
            .expect("write");
    }

    let before = counting.reads();
    let (page, total) = summaries::list_summaries(
        store,
        blobs,
        &account.account_id,
        ModelListing {
            status: None,
            by_name: true,
            ascending: true,
            limit: 2,
            offset: 0,
        },
    )
    .await
    .expect("list");
    let listing_reads = counting.reads() - before;
    assert_eq!((page.len(), total), (2, 3));
    assert_eq!(page[0].latest.as_ref().map(|v| v.number), Some(30));
    assert_eq!(page[0].ready.as_ref().map(|v| v.number), Some(25));
    // 3 model items + per page model: its newest version and a page of versions down to the
    // READY one; far under the 90 versions of the account.
    assert!(
        listing_reads <= 3 + 2 * (1 + 10),
        "a page of 2 models read {listing_reads} items"
    );
    let before = counting.reads();
    let (page, total) = summaries::list_summaries(
        store,
        blobs,
        &account.account_id,
        ModelListing {
            status: Some(VersionStatus::Pending),
            by_name: true,
            ascending: true,
            limit: 1,
            offset: 0,
        },
    )
    .await
    .expect("list");
    assert_eq!((page.len(), total), (1, 3));
    let filtered_reads = counting.reads() - before;
    assert!(
        filtered_reads <= 3 + 3 + 10,
        "a status filter read {filtered_reads} items"
    );

    let before = counting.reads();
    let latest =
        models::resolve_version(store, &account.account_id, &names[0], &VersionRef::Latest)
            .await
            .expect("latest");
    assert_eq!(latest.number, 25);
    let latest_reads = counting.reads() - before;
    assert!(latest_reads <= 10, "latest read {latest_reads} items");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_asks_the_store_once_however_often_it_is_polled() {
    let env = integration_tests::embedded_backends("http://127.0.0.1:9");
    let counting = Arc::new(CountingStore {
        inner: env.backends.store.clone(),
        items_read: AtomicUsize::new(0),
        pings: AtomicUsize::new(0),
    });
    let mut backends = env.backends.clone();
    backends.store = counting.clone();
    let state = shared::http::AppState::new(
        backends,
        shared::config::Config::embedded_defaults(env.dir.path()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/health", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, shared::http::app(state)).await;
    });
    let client = integration_tests::http_client();
    let answers = futures::future::join_all((0..50).map(|_| client.get(&url).send())).await;
    for answer in answers {
        assert_eq!(answer.expect("GET /health").status(), 200);
    }
    assert_eq!(counting.pings.load(Ordering::SeqCst), 1);
    server.abort();
}
