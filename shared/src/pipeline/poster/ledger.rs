//! The poster's view of the idempotency records: one per part, keyed `publish#<storm>#<part>`,
//! taken with a fencing owner token and an in-progress deadline, checkpointed with the container
//! id before publishing and completed with the media id after.
//!
//! A trait over [`IdempotencyStore`] so a test can make one call fail where a crash would (the
//! record stays in DynamoDB either way).

use super::super::idempotency::{
    Begin, Fenced, IdempotencyError, IdempotencyKey, IdempotencyStore, OwnerToken, PayloadHash,
};
use super::super::stage::BoxFuture;
use crate::clock::EpochMillis;

/// Idempotency records as the poster uses them; see [`IdempotencyStore`] for each call.
pub trait PublishLedger: Send + Sync {
    fn begin<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        payload: &'a PayloadHash,
        deadline: EpochMillis,
        now: EpochMillis,
    ) -> BoxFuture<'a, Result<Begin, IdempotencyError>>;

    fn checkpoint<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>>;

    fn complete<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
        data: &'a str,
        now: EpochMillis,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>>;

    fn release<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>>;
}

impl PublishLedger for IdempotencyStore {
    fn begin<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        payload: &'a PayloadHash,
        deadline: EpochMillis,
        now: EpochMillis,
    ) -> BoxFuture<'a, Result<Begin, IdempotencyError>> {
        Box::pin(IdempotencyStore::begin(self, key, payload, deadline, now))
    }

    fn checkpoint<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
        data: &'a str,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>> {
        Box::pin(IdempotencyStore::checkpoint(self, key, owner, data))
    }

    fn complete<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
        data: &'a str,
        now: EpochMillis,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>> {
        Box::pin(IdempotencyStore::complete(self, key, owner, data, now))
    }

    fn release<'a>(
        &'a self,
        key: &'a IdempotencyKey,
        owner: &'a OwnerToken,
    ) -> BoxFuture<'a, Result<Fenced, IdempotencyError>> {
        Box::pin(IdempotencyStore::release(self, key, owner))
    }
}
