//! The poster's view of the idempotency records: one per part, keyed `publish#<storm>#<part>`,
//! taken with a fencing owner token and an in-progress deadline, checkpointed with the container
//! id before publishing and completed with the media id after.

use super::super::stage::BoxFuture;

/// The owner token of an acquired record: every later write is conditional on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerToken(pub String);

/// What taking a record answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This invocation owns the record. `checkpoint` is what an earlier owner saved before it
    /// stopped (its container), if anything.
    Acquired {
        owner: OwnerToken,
        checkpoint: Option<String>,
    },
    /// Done before; `data` is what the completion stored.
    Completed { data: String },
    /// Another invocation holds it and its deadline has not passed.
    InProgress,
    /// The record was taken for different content: never publish over it.
    PayloadMismatch,
}

/// A conditional write on an acquired record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    Written,
    /// Another invocation took the record over: this one must stop.
    LostOwnership,
}

/// The store could not answer; the message is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotency: {0}")]
pub struct LedgerError(pub String);

/// Idempotency records as the poster uses them.
pub trait PublishLedger: Send + Sync {
    /// Takes `key` for content with digest `payload`, held until `in_progress_until_ms` (Unix
    /// milliseconds; written even when it is already past).
    fn begin<'a>(
        &'a self,
        key: &'a str,
        payload: &'a str,
        in_progress_until_ms: i64,
    ) -> BoxFuture<'a, Result<Begin, LedgerError>>;

    /// Saves `data` on the record without completing it; an owner that takes it over later
    /// receives it in [`Begin::Acquired`].
    fn checkpoint<'a>(
        &'a self,
        key: &'a str,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, LedgerError>>;

    /// Completes the record with `data`.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, LedgerError>>;

    /// Gives the record up so a retry can take it at once. The checkpoint is kept: the next
    /// owner receives it and reads the container's status before publishing anything.
    fn release<'a>(
        &'a self,
        key: &'a str,
        owner: &'a OwnerToken,
    ) -> BoxFuture<'a, Result<(), LedgerError>>;
}
