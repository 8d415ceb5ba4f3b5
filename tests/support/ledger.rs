//! The poster's idempotency records in moto, with one fault a test can arm: the function dies
//! between publishing a part and completing its record (the completion and the release after it
//! never reach DynamoDB), as a timeout or crash would leave it.

use std::sync::atomic::{AtomicU32, Ordering};

use threadstorm::clock::EpochMillis;
use threadstorm::pipeline::idempotency::{
    Begin, Fenced, IdempotencyError, IdempotencyKey, IdempotencyStore, OwnerToken, PayloadHash,
    Record,
};
use threadstorm::pipeline::poster::PublishLedger;
use threadstorm::pipeline::stage::BoxFuture;
use threadstorm::store::{StoreError, n, s};

pub struct CrashableLedger {
    pub store: IdempotencyStore,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    /// Completions still to fail as if the function died before making them.
    crashes: AtomicU32,
    /// Set by a crash: the dead invocation releases nothing either.
    dead: AtomicU32,
}

impl CrashableLedger {
    pub fn new(store: IdempotencyStore, dynamodb: aws_sdk_dynamodb::Client, table: String) -> Self {
        CrashableLedger {
            store,
            dynamodb,
            table,
            crashes: AtomicU32::new(0),
            dead: AtomicU32::new(0),
        }
    }

    /// The next completion fails, and the release that would follow it too.
    pub fn crash_before_next_completion(&self) {
        self.crashes.fetch_add(1, Ordering::SeqCst);
    }

    /// The record of part `index` (0-based) of `storm`.
    pub async fn record(&self, storm: &str, index: usize) -> Option<Record> {
        let key = IdempotencyKey::new("publish", &format!("{storm}#{index:03}")).expect("key");
        self.store
            .read(&key, EpochMillis::at(time::OffsetDateTime::now_utc()))
            .await
            .expect("record readable")
    }

    /// Lets every in-progress deadline pass, as the queue's visibility timeout (six times the
    /// function's timeout) guarantees before a failed message comes back.
    pub async fn expire_in_progress(&self) {
        let scan = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .filter_expression("#status = :inprogress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .send()
            .await
            .expect("idempotency table scans");
        for item in scan.items() {
            let Some(id) = item.get("id") else { continue };
            self.dynamodb
                .update_item()
                .table_name(&self.table)
                .key("id", id.clone())
                .update_expression("SET in_progress_expiry = :past")
                .expression_attribute_values(":past", n(1))
                .send()
                .await
                .expect("in-progress expiry moved to the past");
        }
    }
}

fn crashed() -> IdempotencyError {
    IdempotencyError::Store(StoreError {
        operation: "UpdateItem",
        table: "IdempotencyTable".into(),
        message: "the function died before this call".into(),
    })
}

impl PublishLedger for CrashableLedger {
    fn begin<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        payload: &'a PayloadHash,
        deadline: EpochMillis,
        now: EpochMillis,
    ) -> BoxFuture<'a, Result<Begin, IdempotencyError>> {
        self.dead.store(0, Ordering::SeqCst);
        PublishLedger::begin(&self.store, key, payload, deadline, now)
    }

    fn checkpoint<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>> {
        PublishLedger::checkpoint(&self.store, key, owner, data)
    }

    fn complete<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
        data: &'a str,
        now: EpochMillis,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>> {
        let armed = self
            .crashes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
            .is_ok();
        if armed {
            self.dead.store(1, Ordering::SeqCst);
            return Box::pin(async { Err(crashed()) });
        }
        PublishLedger::complete(&self.store, key, owner, data, now)
    }

    fn release<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>> {
        if self.dead.load(Ordering::SeqCst) == 1 {
            return Box::pin(async { Err(crashed()) });
        }
        PublishLedger::release(&self.store, key, owner)
    }
}
