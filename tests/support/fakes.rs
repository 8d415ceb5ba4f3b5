//! Stand-ins for the modules the pipeline uses through narrow traits and that are built on other
//! branches (idempotency records, quota reservations). Each is
//! as small as the tests need and counts the store requests its real counterpart would make.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use threadstorm::pipeline::gate::{Quota, QuotaError, Reservation};
use threadstorm::pipeline::poster::{Begin, Fenced, LedgerError, OwnerToken, PublishLedger};
use threadstorm::pipeline::stage::BoxFuture;
use threadstorm::posts::{AccountId, StormId};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
struct Record {
    payload: String,
    owner: String,
    until_ms: i64,
    checkpoint: Option<String>,
    completed: Option<String>,
}

/// Idempotency records in memory, with the semantics of aws-semantics.md §1 plus the fencing
/// owner token. `fail_completes` makes the next completions fail as a store outage would.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    records: Mutex<HashMap<String, Record>>,
    next_owner: AtomicU64,
    /// Store requests the DynamoDB implementation would make (one per call).
    pub requests: AtomicU64,
    pub fail_completes: AtomicU32,
}

impl MemoryLedger {
    pub fn completed(&self, key: &str) -> Option<String> {
        self.records
            .lock()
            .unwrap()
            .get(key)
            .and_then(|r| r.completed.clone())
    }

    pub fn checkpoint_of(&self, key: &str) -> Option<String> {
        self.records
            .lock()
            .unwrap()
            .get(key)
            .and_then(|r| r.checkpoint.clone())
    }

    /// Lets the in-progress deadline of `key` pass (as time would).
    pub fn expire(&self, key: &str) {
        if let Some(r) = self.records.lock().unwrap().get_mut(key) {
            r.until_ms = 0;
        }
    }

    /// Lets every in-progress deadline pass: what the queue's visibility timeout (at least six
    /// times the function's timeout, so longer than any lock) guarantees before a redelivery.
    pub fn expire_in_progress(&self) {
        for r in self.records.lock().unwrap().values_mut() {
            r.until_ms = 0;
        }
    }
}

impl PublishLedger for MemoryLedger {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        payload: &'a str,
        in_progress_until_ms: i64,
    ) -> BoxFuture<'a, Result<Begin, LedgerError>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let owner = format!("owner-{}", self.next_owner.fetch_add(1, Ordering::SeqCst));
            let mut records = self.records.lock().unwrap();
            let record = records.entry(key.to_owned()).or_insert_with(|| Record {
                payload: payload.to_owned(),
                owner: String::new(),
                until_ms: 0,
                checkpoint: None,
                completed: None,
            });
            if record.payload != payload {
                return Ok(Begin::PayloadMismatch);
            }
            if let Some(data) = &record.completed {
                return Ok(Begin::Completed { data: data.clone() });
            }
            if !record.owner.is_empty() && record.until_ms > now_ms() {
                return Ok(Begin::InProgress);
            }
            record.owner = owner.clone();
            record.until_ms = in_progress_until_ms;
            Ok(Begin::Acquired {
                owner: OwnerToken(owner),
                checkpoint: record.checkpoint.clone(),
            })
        })
    }

    fn checkpoint<'a>(
        &'a self,
        key: &'a str,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, LedgerError>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let mut records = self.records.lock().unwrap();
            match records.get_mut(key) {
                Some(r) if r.owner == owner.0 && r.completed.is_none() => {
                    r.checkpoint = Some(data.to_owned());
                    Ok(Fenced::Written)
                }
                _ => Ok(Fenced::LostOwnership),
            }
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, LedgerError>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::SeqCst);
            if self
                .fail_completes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(LedgerError("injected: the store did not answer".into()));
            }
            let mut records = self.records.lock().unwrap();
            match records.get_mut(key) {
                Some(r) if r.owner == owner.0 && r.completed.is_none() => {
                    r.completed = Some(data.to_owned());
                    Ok(Fenced::Written)
                }
                _ => Ok(Fenced::LostOwnership),
            }
        })
    }

    fn release<'a>(
        &'a self,
        key: &'a str,
        owner: &'a OwnerToken,
    ) -> BoxFuture<'a, Result<(), LedgerError>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::SeqCst);
            let mut records = self.records.lock().unwrap();
            if records.get(key).is_some_and(|r| {
                r.owner == owner.0 && r.checkpoint.is_none() && r.completed.is_none()
            }) {
                records.remove(key);
            }
            Ok(())
        })
    }
}

/// Answers every reservation with `answer`, remembering each call and each storm reserved for
/// (a storm reserved for again is not counted again, as the trait requires).
#[derive(Debug)]
pub struct ScriptedQuota {
    pub answer: Mutex<Reservation>,
    pub calls: Mutex<Vec<(String, u32, u32)>>,
    pub reserved: Mutex<std::collections::BTreeSet<String>>,
}

impl Default for ScriptedQuota {
    fn default() -> Self {
        ScriptedQuota {
            answer: Mutex::new(Reservation::Reserved),
            calls: Mutex::new(Vec::new()),
            reserved: Mutex::new(Default::default()),
        }
    }
}

impl Quota for ScriptedQuota {
    fn reserve<'a>(
        &'a self,
        _account: &'a AccountId,
        storm: &'a StormId,
        posts: u32,
        replies: u32,
        _now: i64,
    ) -> BoxFuture<'a, Result<Reservation, QuotaError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push((storm.to_string(), posts, replies));
            let answer = self.answer.lock().unwrap().clone();
            if answer == Reservation::Reserved {
                self.reserved.lock().unwrap().insert(storm.to_string());
            }
            Ok(answer)
        })
    }
}
