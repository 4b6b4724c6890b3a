//! The AWS store: one DynamoDB table, single-table design. Attributes: `pk` (S, hash key), `sk`
//! (S, range key), `data` (S, the JSON document), `rev` (N), `expires_at` (N, the TTL
//! attribute) and, on counters only, `n` (N, the counter value that `ADD` works on).
//!
//! Every write is an `UpdateItem` that `ADD`s 1 to `rev`, so revisions come from the table
//! itself, never from a read-then-write race. Conditions are condition expressions on `rev`,
//! `pk` and `expires_at`; DynamoDB's TTL sweep is lazy, so expired items are filtered on reads
//! and count as absent in conditions.

use super::{
    Condition, Item, Page, Store, StoreError, WriteOp, check_limit, decode_cursor, encode_cursor,
    is_live,
};
use crate::ports::aws_error::{AwsFailure, cause, classify};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::Duration;

type Attrs = HashMap<String, AttributeValue>;

/// Expression attribute names: `data` is a DynamoDB reserved word, so all go through `#`.
const NAMES: &[(&str, &str)] = &[
    ("#pk", "pk"),
    ("#sk", "sk"),
    ("#data", "data"),
    ("#rev", "rev"),
    ("#exp", "expires_at"),
    ("#cnt", "n"),
];

/// How many times `increment` retries the reset of an expired counter that another writer
/// touched meanwhile.
const INCREMENT_ATTEMPTS: usize = 8;

pub struct DynamoStore {
    client: Client,
    table: String,
}

/// A write expression being assembled: the expression strings plus the values they use.
/// DynamoDB rejects unused names and values, so only referenced ones are sent.
#[derive(Default)]
struct Expr {
    update: Option<String>,
    condition: Option<String>,
    values: Attrs,
}

impl Expr {
    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn names(&self, extra: &[&str]) -> Option<HashMap<String, String>> {
        let used: HashMap<String, String> = NAMES
            .iter()
            .filter(|(p, _)| {
                self.update
                    .iter()
                    .chain(self.condition.iter())
                    .any(|e| e.contains(p))
                    || extra.iter().any(|e| e.contains(p))
            })
            .map(|(p, n)| ((*p).to_owned(), (*n).to_owned()))
            .collect();
        (!used.is_empty()).then_some(used)
    }

    fn values(&self) -> Option<Attrs> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

const LIVE: &str = "(attribute_not_exists(#exp) OR #exp > :now)";

/// The condition expression for `condition` (needs `:now`, and `:expected` for a revision).
fn condition_expr(condition: Condition, now: i64) -> Expr {
    let (text, expected) = match condition {
        Condition::None => return Expr::default(),
        Condition::Absent => ("attribute_not_exists(#pk) OR #exp <= :now".to_owned(), None),
        Condition::Exists => (format!("attribute_exists(#pk) AND {LIVE}"), None),
        Condition::Revision(rev) => (format!("#rev = :expected AND {LIVE}"), Some(rev)),
    };
    let mut expr = Expr {
        condition: Some(text),
        ..Expr::default()
    }
    .value(":now", n(now));
    if let Some(rev) = expected {
        expr = expr.value(":expected", n(rev));
    }
    expr
}

/// The update that stores `item` (its `rev` is ignored) under `condition`.
fn put_expr(item: &Item, condition: Condition, now: i64) -> Result<Expr, StoreError> {
    let data = serde_json::to_string(&item.data)
        .map_err(|e| StoreError::other(crate::ports::failed("item data not serializable", e)))?;
    let mut expr = condition_expr(condition, now)
        .value(":data", s(data))
        .value(":one", n(1));
    // A put over a counter turns it into a document item, hence the REMOVE of `n`.
    expr.update = Some(match item.expires_at {
        Some(at) => {
            expr = expr.value(":exp", n(at));
            "SET #data = :data, #exp = :exp ADD #rev :one REMOVE #cnt".to_owned()
        }
        None => "SET #data = :data ADD #rev :one REMOVE #exp, #cnt".to_owned(),
    });
    Ok(expr)
}

fn number<T: std::str::FromStr>(attrs: &Attrs, name: &str) -> Option<T> {
    match attrs.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn item_from(attrs: &Attrs) -> Result<Item, StoreError> {
    let text = |name: &str| match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::other(format!(
            "stored item lacks string attribute {name}"
        ))),
    };
    let data = match attrs.get("data") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json)
            .map_err(|e| StoreError::other(crate::ports::failed("stored item is not JSON", e)))?,
        // Counters keep their value in `n`, which `ADD` can work on.
        _ => number::<i64>(attrs, "n").map_or(serde_json::Value::Null, serde_json::Value::from),
    };
    Ok(Item {
        pk: text("pk")?,
        sk: text("sk")?,
        data,
        rev: number(attrs, "rev").unwrap_or(0),
        expires_at: number(attrs, "expires_at"),
    })
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::other(crate::ports::failed("building a DynamoDB request", e))
}

fn now() -> i64 {
    crate::ids::now_epoch()
}

fn sdk_err<E>(err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(&err) {
        AwsFailure::Transient(_) => StoreError::unavailable(cause(err)),
        f if f.is_code("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        _ => StoreError::other(cause(err)),
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Creates the table (on-demand billing, TTL on `expires_at`) and waits until it is active.
    /// For tests and local setups; SAM creates the production table.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk").map_err(build_err)?)
            .attribute_definitions(attr("sk").map_err(build_err)?)
            .key_schema(key("pk", KeyType::Hash).map_err(build_err)?)
            .key_schema(key("sk", KeyType::Range).map_err(build_err)?)
            .send()
            .await
            .map_err(sdk_err)?;
        for _ in 0..120 {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(sdk_err)?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("expires_at")
            .build()
            .map_err(build_err)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn update(&self, pk: &str, sk: &str, expr: Expr) -> Result<Attrs, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_update_expression(expr.update.clone())
            .set_condition_expression(expr.condition.clone())
            .set_expression_attribute_names(expr.names(&[]))
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.attributes.unwrap_or_default())
    }

    fn transact_item(
        &self,
        op: WriteOp,
        now: i64,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let item = match op {
            WriteOp::Put { item, condition } => {
                let expr = put_expr(&item, condition, now)?;
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&item.pk, &item.sk)))
                    .set_update_expression(expr.update.clone())
                    .set_condition_expression(expr.condition.clone())
                    .set_expression_attribute_names(expr.names(&[]))
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().update(update).build()
            }
            WriteOp::Delete { pk, sk, condition } => {
                let expr = condition_expr(condition, now);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .set_condition_expression(expr.condition.clone())
                    .set_expression_attribute_names(expr.names(&[]))
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            WriteOp::Check { pk, sk, condition } => {
                let expr = condition_expr(condition, now);
                // A check without a condition checks nothing.
                let Some(text) = expr.condition.clone() else {
                    return Ok(None);
                };
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .condition_expression(text)
                    .set_expression_attribute_names(expr.names(&[]))
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(build_err)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(Some(item))
    }
}

#[async_trait]
impl Store for DynamoStore {
    fn backend(&self) -> &'static str {
        "dynamodb"
    }

    #[tracing::instrument(name = "store.ping", level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    #[tracing::instrument(name = "store.get", level = "debug", skip(self))]
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        let Some(attrs) = out.item else {
            return Ok(None);
        };
        let item = item_from(&attrs)?;
        Ok(is_live(item.expires_at, now()).then_some(item))
    }

    #[tracing::instrument(name = "store.put", level = "debug", skip_all, fields(pk = %item.pk, sk = %item.sk))]
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, StoreError> {
        let expr = put_expr(&item, condition, now())?;
        let attrs = self.update(&item.pk, &item.sk, expr).await?;
        number(&attrs, "rev").ok_or_else(|| StoreError::other("DynamoDB returned no revision"))
    }

    #[tracing::instrument(name = "store.delete", level = "debug", skip(self))]
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        let expr = condition_expr(condition, now());
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(expr.condition.clone())
            .set_expression_attribute_names(expr.names(&[]))
            .set_expression_attribute_values(expr.values())
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    #[tracing::instrument(name = "store.query", level = "debug", skip(self))]
    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        ascending: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        check_limit(limit)?;
        let mut start = cursor
            .map(|c| decode_cursor(c, sk_prefix))
            .transpose()?
            .map(|sk| key(pk, &sk));
        // DynamoDB refuses an empty string in a key condition, so an empty prefix means "all".
        let key_condition = if sk_prefix.is_empty() {
            "#pk = :pk"
        } else {
            "#pk = :pk AND begins_with(#sk, :prefix)"
        };
        let filter = "attribute_not_exists(#exp) OR #exp > :now";
        let mut values = HashMap::from([(":pk".to_owned(), s(pk)), (":now".to_owned(), n(now()))]);
        if !sk_prefix.is_empty() {
            values.insert(":prefix".to_owned(), s(sk_prefix));
        }
        let names = Expr::default().names(&[key_condition, filter]);
        let mut items = Vec::new();
        // `Limit` counts items before the TTL filter, so a page is filled over several calls;
        // the cursor is the last *returned* key, so nothing filtered or unreturned is skipped.
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .filter_expression(filter)
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(ascending)
                .consistent_read(true)
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_err)?;
            for attrs in out.items() {
                items.push(item_from(attrs)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(Page {
                    items,
                    cursor: None,
                });
            }
            if items.len() >= limit {
                let cursor = items.last().map(|i| encode_cursor(&i.sk));
                return Ok(Page { items, cursor });
            }
        }
    }

    #[tracing::instrument(name = "store.increment", level = "debug", skip(self))]
    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        for _ in 0..INCREMENT_ATTEMPTS {
            let now = now();
            // Count on a live (or absent) counter; a new counter takes the given TTL.
            let mut add = Expr {
                update: Some(match expires_at {
                    Some(_) => {
                        "ADD #cnt :delta, #rev :one SET #exp = if_not_exists(#exp, :exp)".to_owned()
                    }
                    None => "ADD #cnt :delta, #rev :one".to_owned(),
                }),
                condition: Some(format!("attribute_not_exists(#pk) OR {LIVE}")),
                values: Attrs::new(),
            }
            .value(":delta", n(delta))
            .value(":one", n(1))
            .value(":now", n(now));
            if let Some(at) = expires_at {
                add = add.value(":exp", n(at));
            }
            match self.update(pk, sk, add).await {
                Ok(attrs) => {
                    return number(&attrs, "n")
                        .ok_or_else(|| StoreError::other("DynamoDB returned no count"));
                }
                Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e),
            }
            // The counter has expired: restart it from `delta`, unless another writer did first
            // (then count on theirs in the next round).
            let mut reset = Expr {
                update: Some(match expires_at {
                    Some(_) => {
                        "SET #cnt = :delta, #exp = :exp ADD #rev :one REMOVE #data".to_owned()
                    }
                    None => "SET #cnt = :delta ADD #rev :one REMOVE #data, #exp".to_owned(),
                }),
                condition: Some("#exp <= :now".to_owned()),
                values: Attrs::new(),
            }
            .value(":delta", n(delta))
            .value(":one", n(1))
            .value(":now", n(now));
            if let Some(at) = expires_at {
                reset = reset.value(":exp", n(at));
            }
            match self.update(pk, sk, reset).await {
                Ok(_) => return Ok(delta),
                Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::unavailable(format!(
            "counter {pk}/{sk} kept changing while being reset"
        )))
    }

    #[tracing::instrument(name = "store.transact", level = "debug", skip_all, fields(ops = ops.len()))]
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if ops.len() > 25 {
            return Err(StoreError::other(format!(
                "transaction of {} writes exceeds 25",
                ops.len()
            )));
        }
        let now = now();
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            if let Some(item) = self.transact_item(op, now)? {
                items.push(item);
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let failed_condition = err
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    })
                    .is_some_and(|c| c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed")));
                if failed_condition {
                    Err(StoreError::ConditionFailed)
                } else {
                    match classify(&err) {
                        // Cancelled for another reason (e.g. a conflicting transaction): retryable.
                        f if f.is_code("TransactionCanceledException") => {
                            Err(StoreError::unavailable(cause(err)))
                        }
                        _ => Err(sdk_err(err)),
                    }
                }
            }
        }
    }
}
