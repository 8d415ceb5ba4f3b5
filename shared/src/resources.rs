//! The AWS resources ThreadStorm uses and which function uses which, with what access.
//!
//! This is the code side of template.yaml: each resource's logical id is its name in the template
//! and its environment variable is how a function learns the physical name. A test parses the
//! template and checks that every need listed here is passed in and granted there, and nothing more.

/// A table, queue, secret or key declared in template.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    UsersTable,
    AccountsTable,
    SessionsTable,
    PostsTable,
    IdempotencyTable,
    RateLimitsTable,
    AuditTable,
    InboxTable,
    IntakeQueue,
    GateQueue,
    PosterQueue,
    ResultsQueue,
    ThreadsAppSecret,
    SessionKeySecret,
    WebhookVerifyTokenSecret,
    TokenEncryptionKeySecret,
    InternalApiKeySecret,
    TokenKey,
}

/// What kind of AWS resource a [`Resource`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    Queue,
    Secret,
    Key,
}

impl Resource {
    pub const ALL: [Resource; 18] = [
        Resource::UsersTable,
        Resource::AccountsTable,
        Resource::SessionsTable,
        Resource::PostsTable,
        Resource::IdempotencyTable,
        Resource::RateLimitsTable,
        Resource::AuditTable,
        Resource::InboxTable,
        Resource::IntakeQueue,
        Resource::GateQueue,
        Resource::PosterQueue,
        Resource::ResultsQueue,
        Resource::ThreadsAppSecret,
        Resource::SessionKeySecret,
        Resource::WebhookVerifyTokenSecret,
        Resource::TokenEncryptionKeySecret,
        Resource::InternalApiKeySecret,
        Resource::TokenKey,
    ];

    /// The resource's logical id in template.yaml.
    pub fn logical_id(self) -> &'static str {
        match self {
            Resource::UsersTable => "UsersTable",
            Resource::AccountsTable => "AccountsTable",
            Resource::SessionsTable => "SessionsTable",
            Resource::PostsTable => "PostsTable",
            Resource::IdempotencyTable => "IdempotencyTable",
            Resource::RateLimitsTable => "RateLimitsTable",
            Resource::AuditTable => "AuditTable",
            Resource::InboxTable => "InboxTable",
            Resource::IntakeQueue => "IntakeQueue",
            Resource::GateQueue => "GateQueue",
            Resource::PosterQueue => "PosterQueue",
            Resource::ResultsQueue => "ResultsQueue",
            Resource::ThreadsAppSecret => "ThreadsAppSecret",
            Resource::SessionKeySecret => "SessionKeySecret",
            Resource::WebhookVerifyTokenSecret => "WebhookVerifyTokenSecret",
            Resource::TokenEncryptionKeySecret => "TokenEncryptionKeySecret",
            Resource::InternalApiKeySecret => "InternalApiKeySecret",
            Resource::TokenKey => "TokenKey",
        }
    }

    /// The environment variable that carries the physical name (table name, queue URL, secret
    /// ARN, key ARN).
    pub fn env_var(self) -> &'static str {
        match self {
            Resource::UsersTable => "TABLE_USERS",
            Resource::AccountsTable => "TABLE_ACCOUNTS",
            Resource::SessionsTable => "TABLE_SESSIONS",
            Resource::PostsTable => "TABLE_POSTS",
            Resource::IdempotencyTable => "TABLE_IDEMPOTENCY",
            Resource::RateLimitsTable => "TABLE_RATE_LIMITS",
            Resource::AuditTable => "TABLE_AUDIT",
            Resource::InboxTable => "TABLE_INBOX",
            Resource::IntakeQueue => "QUEUE_INTAKE_URL",
            Resource::GateQueue => "QUEUE_GATE_URL",
            Resource::PosterQueue => "QUEUE_POSTER_URL",
            Resource::ResultsQueue => "QUEUE_RESULTS_URL",
            Resource::ThreadsAppSecret => "SECRET_THREADS_APP",
            Resource::SessionKeySecret => "SECRET_SESSION_KEY",
            Resource::WebhookVerifyTokenSecret => "SECRET_WEBHOOK_VERIFY_TOKEN",
            Resource::TokenEncryptionKeySecret => "SECRET_TOKEN_ENCRYPTION_KEY",
            Resource::InternalApiKeySecret => "SECRET_INTERNAL_API_KEY",
            Resource::TokenKey => "AWS_KMS_KEY_ID",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Resource::UsersTable
            | Resource::AccountsTable
            | Resource::SessionsTable
            | Resource::PostsTable
            | Resource::IdempotencyTable
            | Resource::RateLimitsTable
            | Resource::AuditTable
            | Resource::InboxTable => Kind::Table,
            Resource::IntakeQueue
            | Resource::GateQueue
            | Resource::PosterQueue
            | Resource::ResultsQueue => Kind::Queue,
            Resource::ThreadsAppSecret
            | Resource::SessionKeySecret
            | Resource::WebhookVerifyTokenSecret
            | Resource::TokenEncryptionKeySecret
            | Resource::InternalApiKeySecret => Kind::Secret,
            Resource::TokenKey => Kind::Key,
        }
    }
}

/// How a function uses a resource; template.yaml grants exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Table: GetItem, Query, BatchGetItem.
    Read,
    /// Table: read plus PutItem, UpdateItem, DeleteItem, TransactWriteItems.
    ReadWrite,
    /// Table: UpdateItem and PutItem only — request counters and their markers
    /// ([`crate::rate_limit`]), nothing read and nothing deleted.
    Count,
    /// Queue: SendMessage, SendMessageBatch.
    Send,
    /// Queue: the function is its event source mapping's consumer. No environment variable.
    Consume,
    /// Secret: GetSecretValue.
    ReadSecret,
    /// Secret: the rotation steps (DescribeSecret, GetSecretValue, PutSecretValue,
    /// UpdateSecretVersionStage).
    Rotate,
    /// Start a rotation now (DescribeSecret and RotateSecret; the rotation function does the rest).
    StartRotation,
    /// Key: GenerateDataKey and Decrypt.
    Seal,
    /// Key: Decrypt only — opening sealed tokens, never sealing new ones.
    Open,
}

/// One resource a function uses and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub resource: Resource,
    pub access: Access,
}

const fn need(resource: Resource, access: Access) -> Need {
    Need { resource, access }
}

/// A Lambda function: its binary name, its logical id in template.yaml and what it uses.
#[derive(Debug)]
pub struct FunctionSpec {
    /// The binary and crate name under `functions/`.
    pub name: &'static str,
    /// The function's logical id in template.yaml.
    pub logical_id: &'static str,
    pub needs: &'static [Need],
}

impl FunctionSpec {
    /// The resources whose physical names the function reads from its environment.
    pub fn env_resources(&self) -> impl Iterator<Item = Resource> + '_ {
        self.needs
            .iter()
            .filter(|n| n.access != Access::Consume)
            .map(|n| n.resource)
    }

    pub fn by_name(name: &str) -> Option<&'static FunctionSpec> {
        FUNCTIONS.iter().copied().find(|f| f.name == name)
    }
}

use Access::*;
use Resource::*;

pub static API: FunctionSpec = FunctionSpec {
    name: "api",
    logical_id: "ApiFunction",
    needs: &[
        need(UsersTable, ReadWrite),
        need(AccountsTable, ReadWrite),
        need(SessionsTable, ReadWrite),
        need(PostsTable, ReadWrite),
        need(IdempotencyTable, ReadWrite),
        // The kill switch (read; set by admins) and the per-user request counters.
        need(RateLimitsTable, ReadWrite),
        need(AuditTable, ReadWrite),
        need(InboxTable, Read),
        need(IntakeQueue, Send),
        need(SessionKeySecret, ReadSecret),
        // Opening account tokens to read Threads insights (GET /v1/analytics).
        need(TokenKey, Open),
        // Emergency rotation from the admin API.
        need(SessionKeySecret, StartRotation),
        need(WebhookVerifyTokenSecret, StartRotation),
        need(TokenEncryptionKeySecret, StartRotation),
        need(InternalApiKeySecret, StartRotation),
    ],
};

pub static OAUTH: FunctionSpec = FunctionSpec {
    name: "oauth",
    logical_id: "OAuthFunction",
    needs: &[
        need(UsersTable, ReadWrite),
        need(AccountsTable, ReadWrite),
        need(SessionsTable, ReadWrite),
        // Per-address request counters (rate_limit).
        need(RateLimitsTable, Count),
        need(AuditTable, ReadWrite),
        need(ThreadsAppSecret, ReadSecret),
        need(SessionKeySecret, ReadSecret),
        need(TokenKey, Seal),
    ],
};

pub static WEBHOOKS: FunctionSpec = FunctionSpec {
    name: "webhooks",
    logical_id: "WebhooksFunction",
    needs: &[
        need(UsersTable, ReadWrite),
        need(AccountsTable, ReadWrite),
        need(PostsTable, ReadWrite),
        need(IdempotencyTable, ReadWrite),
        // Per-address request counters (rate_limit).
        need(RateLimitsTable, Count),
        need(InboxTable, ReadWrite),
        need(AuditTable, ReadWrite),
        need(ThreadsAppSecret, ReadSecret),
        need(WebhookVerifyTokenSecret, ReadSecret),
    ],
};

pub static SCHEDULER: FunctionSpec = FunctionSpec {
    name: "scheduler",
    logical_id: "SchedulerFunction",
    needs: &[need(PostsTable, ReadWrite), need(IntakeQueue, Send)],
};

pub static DEDUPE: FunctionSpec = FunctionSpec {
    name: "dedupe",
    logical_id: "DedupeFunction",
    needs: &[
        need(PostsTable, ReadWrite),
        need(IdempotencyTable, ReadWrite),
        need(IntakeQueue, Consume),
        need(GateQueue, Send),
    ],
};

pub static GATE: FunctionSpec = FunctionSpec {
    name: "gate",
    logical_id: "GateFunction",
    needs: &[
        need(PostsTable, ReadWrite),
        need(RateLimitsTable, ReadWrite),
        need(GateQueue, Consume),
        need(PosterQueue, Send),
    ],
};

pub static POSTER: FunctionSpec = FunctionSpec {
    name: "poster",
    logical_id: "PosterFunction",
    needs: &[
        need(UsersTable, Read),
        need(AccountsTable, ReadWrite),
        need(PostsTable, ReadWrite),
        need(IdempotencyTable, ReadWrite),
        need(AuditTable, ReadWrite),
        need(PosterQueue, Consume),
        need(ResultsQueue, Send),
        need(TokenKey, Seal),
    ],
};

pub static RESULT_SINK: FunctionSpec = FunctionSpec {
    name: "result-sink",
    logical_id: "ResultSinkFunction",
    needs: &[
        need(PostsTable, ReadWrite),
        need(RateLimitsTable, ReadWrite),
        need(AuditTable, ReadWrite),
        need(ResultsQueue, Consume),
    ],
};

pub static TOKEN_REFRESHER: FunctionSpec = FunctionSpec {
    name: "token-refresher",
    logical_id: "TokenRefresherFunction",
    needs: &[
        need(AccountsTable, ReadWrite),
        need(AuditTable, ReadWrite),
        need(TokenKey, Seal),
    ],
};

pub static SECRET_ROTATION: FunctionSpec = FunctionSpec {
    name: "secret-rotation",
    logical_id: "SecretRotationFunction",
    needs: &[
        need(SessionKeySecret, Rotate),
        need(WebhookVerifyTokenSecret, Rotate),
        need(TokenEncryptionKeySecret, Rotate),
        need(InternalApiKeySecret, Rotate),
        need(AuditTable, ReadWrite),
    ],
};

/// Every function, in pipeline order.
pub static FUNCTIONS: [&FunctionSpec; 10] = [
    &API,
    &OAUTH,
    &WEBHOOKS,
    &SCHEDULER,
    &DEDUPE,
    &GATE,
    &POSTER,
    &RESULT_SINK,
    &TOKEN_REFRESHER,
    &SECRET_ROTATION,
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_variables_are_unique() {
        let ids: HashSet<_> = Resource::ALL.iter().map(|r| r.logical_id()).collect();
        let vars: HashSet<_> = Resource::ALL.iter().map(|r| r.env_var()).collect();
        assert_eq!(ids.len(), Resource::ALL.len());
        assert_eq!(vars.len(), Resource::ALL.len());
        let fns: HashSet<_> = FUNCTIONS.iter().map(|f| f.logical_id).collect();
        assert_eq!(fns.len(), FUNCTIONS.len());
    }

    #[test]
    fn each_access_fits_its_kind() {
        for f in FUNCTIONS {
            for n in f.needs {
                let fits = match n.access {
                    Read | ReadWrite | Count => n.resource.kind() == Kind::Table,
                    Send | Consume => n.resource.kind() == Kind::Queue,
                    ReadSecret | Rotate | StartRotation => n.resource.kind() == Kind::Secret,
                    Seal | Open => n.resource.kind() == Kind::Key,
                };
                assert!(fits, "{}: {:?} on {:?}", f.name, n.access, n.resource);
            }
        }
    }

    #[test]
    fn each_queue_has_exactly_one_consumer() {
        for queue in Resource::ALL.iter().filter(|r| r.kind() == Kind::Queue) {
            let consumers = FUNCTIONS
                .iter()
                .filter(|f| f.needs.contains(&need(*queue, Consume)))
                .count();
            assert_eq!(consumers, 1, "{queue:?}");
        }
    }
}
