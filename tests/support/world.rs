//! A whole pipeline for one test: a fresh local stack in moto, the Threads emulator in-process,
//! every stage's dependencies built on counting clients, and an event source mapping that feeds
//! each stage real batches from its real queue.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsMessage};
use local_stack::testing::TestStack;
use threads_emulator::{Emulator, EmulatorConfig};
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::audit::Audit;
use threadstorm::aws::AwsClients;
use threadstorm::clock::EpochMillis;
use threadstorm::config::LogSwitches;
use threadstorm::pipeline::dedupe::{self, ContentRules, DedupeDeps};
use threadstorm::pipeline::fifo::WholeBatchFailed;
use threadstorm::pipeline::gate::{self, GateDeps};
use threadstorm::pipeline::idempotency::IdempotencyStore;
use threadstorm::pipeline::intake::{self, IntakeDeps, NewStorm};
use threadstorm::pipeline::poster::PUBLISH_RECORDS_KEPT;
use threadstorm::pipeline::poster::{self, PosterDeps, PosterSettings};
use threadstorm::pipeline::quota::{Counts, Governors, QuotaStore};
use threadstorm::pipeline::results::{self, LogOnly, ResultSinkDeps};
use threadstorm::pipeline::scheduler::{SchedulerDeps, SweepSettings};
use threadstorm::policy::{ContentPolicy, ProhibitedTerms};
use threadstorm::posts::{AccountId, PartContent, PostsStore, Storm, StormId};
use threadstorm::resources::Resource;
use threadstorm::store::s;
use threadstorm::threads::{ThreadsClient, ThreadsConfig};
use threadstorm::users::UserId;
use threadstorm::vault::{CacheLimits, Purpose, TokenOwner, Vault};

use super::counting::RequestCounter;
use super::ledger::CrashableLedger;
use super::sqs;

/// The emulator's default test user.
pub const ACCOUNT: &str = "17841405793187218";
pub const OWNER: &str = "user-1";

/// The queue each stage consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    Dedupe,
    Gate,
    Poster,
    ResultSink,
}

impl Consumer {
    pub const ALL: [Consumer; 4] = [
        Consumer::Dedupe,
        Consumer::Gate,
        Consumer::Poster,
        Consumer::ResultSink,
    ];
}

pub struct World {
    pub stack: TestStack,
    pub emu: Emulator,
    /// Counts the requests the functions make (not the event source mapping's).
    pub counter: RequestCounter,
    pub aws: AwsClients,
    pub posts: PostsStore,
    pub ledger: Arc<CrashableLedger>,
    pub quota: Arc<QuotaStore>,
    pub vault: Arc<Vault>,
    pub intake: IntakeDeps,
    pub dedupe: DedupeDeps,
    pub gate: GateDeps,
    pub poster: PosterDeps,
    pub results: ResultSinkDeps,
    pub scheduler: SchedulerDeps,
    pub account: AccountId,
}

/// The content policy with case B1's prohibited terms.
pub fn case_b1_policy() -> ContentPolicy {
    ContentPolicy::new(ProhibitedTerms::new(["Glimmr", "Ace"]).expect("terms"))
}

/// Backoff short enough for tests; every bound as in production.
pub fn fast_settings() -> PosterSettings {
    PosterSettings {
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        ..PosterSettings::default()
    }
}

impl World {
    pub async fn new() -> World {
        Self::with(EmulatorConfig::default(), Arc::new(case_b1_policy())).await
    }

    pub async fn with(config: EmulatorConfig, rules: Arc<dyn ContentRules>) -> World {
        Self::governed(config, rules, Governors::SEED).await
    }

    /// A pipeline whose gate reserves against `governors`.
    pub async fn governed(
        config: EmulatorConfig,
        rules: Arc<dyn ContentRules>,
        governors: Governors,
    ) -> World {
        let stack = TestStack::new().await;
        let emu = Emulator::start(config).await.expect("emulator starts");
        let counter = RequestCounter::default();
        let aws = counter.clients(&stack.sdk);
        let table = |r: Resource| stack.name(r);
        let posts = PostsStore::new(aws.dynamodb.clone(), table(Resource::PostsTable));
        let ledger = Arc::new(CrashableLedger::new(
            IdempotencyStore::new(
                aws.dynamodb.clone(),
                table(Resource::IdempotencyTable),
                PUBLISH_RECORDS_KEPT,
            ),
            stack.aws.dynamodb.clone(),
            table(Resource::IdempotencyTable),
        ));
        let quota = Arc::new(QuotaStore::new(
            aws.dynamodb.clone(),
            table(Resource::RateLimitsTable),
            governors,
        ));
        let accounts = AccountStore::new(aws.dynamodb.clone(), table(Resource::AccountsTable));
        let threads = ThreadsClient::new(
            ThreadsConfig::new(&emu.base_url(), &emu.authorize_url())
                .expect("emulator URL")
                .with_timeouts(Duration::from_secs(2), Duration::from_secs(5)),
        )
        .expect("client");
        let intake = IntakeDeps {
            posts: posts.clone(),
            accounts: accounts.clone(),
            sqs: aws.sqs.clone(),
            intake_queue: table(Resource::IntakeQueue),
            rules: None,
            grace_secs: SweepSettings::default().grace_secs,
        };
        let dedupe = DedupeDeps {
            posts: posts.clone(),
            dynamodb: aws.dynamodb.clone(),
            idempotency_table: table(Resource::IdempotencyTable),
            sqs: aws.sqs.clone(),
            gate_queue: table(Resource::GateQueue),
            rules,
        };
        let gate = GateDeps {
            posts: posts.clone(),
            dynamodb: aws.dynamodb.clone(),
            rate_limits_table: table(Resource::RateLimitsTable),
            sqs: aws.sqs.clone(),
            poster_queue: table(Resource::PosterQueue),
            quota: quota.clone(),
            pause_recheck_secs: 60,
        };
        // Tokens are sealed with KMS (moto) for their owner, as the oauth function stores them;
        // the poster opens them through the vault, which audits each opening.
        let audit = Audit::dynamodb(
            aws.dynamodb.clone(),
            table(Resource::AuditTable),
            &LogSwitches {
                audit: true,
                rate_limit: true,
                access: true,
                deletion: true,
            },
        );
        let vault = Arc::new(Vault::with_kms(
            aws.kms.clone(),
            table(Resource::TokenKey),
            CacheLimits::default(),
            audit,
        ));
        let poster = PosterDeps {
            posts: posts.clone(),
            accounts,
            tokens: vault.clone(),
            ledger: ledger.clone(),
            threads,
            sqs: aws.sqs.clone(),
            results_queue: table(Resource::ResultsQueue),
            settings: fast_settings(),
        };
        let results = ResultSinkDeps {
            posts: posts.clone(),
            sqs: aws.sqs.clone(),
            hooks: Arc::new(LogOnly),
            quota: quota.clone(),
        };
        let scheduler = SchedulerDeps {
            posts: posts.clone(),
            sqs: aws.sqs.clone(),
            intake_queue: table(Resource::IntakeQueue),
            settings: SweepSettings::default(),
        };
        let world = World {
            stack,
            emu,
            counter,
            aws,
            posts,
            ledger,
            quota,
            vault,
            intake,
            dedupe,
            gate,
            poster,
            results,
            scheduler,
            account: AccountId::parse(ACCOUNT).expect("account id"),
        };
        world.connect(OWNER, ACCOUNT).await;
        world
    }

    /// What the test account has reserved in the rolling windows at `at` (Unix seconds).
    pub async fn usage(&self, at: i64) -> Counts {
        self.quota
            .usage(&self.account, EpochMillis::new(at * 1000))
            .await
            .expect("quota readable")
    }

    /// Connects `account` for `owner`, with a fresh emulator token; returns the token.
    pub async fn connect(&self, owner: &str, account: &str) -> String {
        let token = self.emu.issue_long_lived_token(account);
        let sealed = self.seal(&token, owner, account).await;
        let t = now();
        let record = Account {
            account_id: AccountId::parse(account).expect("account id"),
            owner_user_id: owner.to_owned(),
            username: format!("user_{account}"),
            status: AccountStatus::Connected,
            sealed_token: Some(sealed),
            token_issued_at: t,
            token_expires_at: t + 60 * 86_400,
            connected_at: t,
        };
        AccountStore::new(
            self.stack.aws.dynamodb.clone(),
            self.stack.name(Resource::AccountsTable),
        )
        .connect(&record)
        .await
        .expect("account connected");
        token
    }

    /// `token` sealed for `owner` and `account`, as stored in the accounts table.
    pub async fn seal(&self, token: &str, owner: &str, account: &str) -> String {
        let owner = TokenOwner::new(UserId::parse(owner).expect("user id"), account);
        self.vault
            .seal(token, &owner, Purpose::ThreadsAccessToken)
            .await
            .expect("sealed")
            .into_string()
    }

    /// Hands `account` to `owner` as if the old owner disconnected it and `owner` connected it;
    /// returns the new token.
    pub async fn hand_over(&self, owner: &str, account: &str) -> String {
        self.stack
            .aws
            .dynamodb
            .delete_item()
            .table_name(self.stack.name(Resource::AccountsTable))
            .key("account_id", s(account))
            .send()
            .await
            .expect("account deleted");
        self.connect(owner, account).await
    }

    /// Submits a storm of text parts through intake.
    pub async fn submit(&self, texts: &[&str], now: i64) -> Storm {
        self.submit_parts(
            OWNER,
            &self.account.clone(),
            texts.iter().map(|t| PartContent::text(*t)).collect(),
            now,
        )
        .await
    }

    pub async fn submit_parts(
        &self,
        owner: &str,
        account: &AccountId,
        parts: Vec<PartContent>,
        now: i64,
    ) -> Storm {
        let new = NewStorm {
            account_id: account.clone(),
            parts,
            publish_at: None,
        };
        intake::submit(&self.intake, owner, new, now)
            .await
            .expect("submitted")
    }

    pub fn queue_of(&self, consumer: Consumer) -> String {
        self.stack.name(match consumer {
            Consumer::Dedupe => Resource::IntakeQueue,
            Consumer::Gate => Resource::GateQueue,
            Consumer::Poster => Resource::PosterQueue,
            Consumer::ResultSink => Resource::ResultsQueue,
        })
    }

    /// Hands `records` to the stage, as one invocation.
    pub async fn invoke(
        &self,
        consumer: Consumer,
        records: &[SqsMessage],
        now: i64,
    ) -> Result<SqsBatchResponse, WholeBatchFailed> {
        match consumer {
            Consumer::Dedupe => dedupe::handle(&self.dedupe, records, now).await,
            Consumer::Gate => gate::handle(&self.gate, records, now).await,
            Consumer::Poster => poster::handle(&self.poster, records, now, now_ms() + 60_000).await,
            Consumer::ResultSink => results::handle(&self.results, records, now).await,
        }
    }

    /// Receives one real batch for `consumer`, invokes it, settles it. `None` when the queue
    /// had nothing.
    pub async fn step(
        &self,
        consumer: Consumer,
        now: i64,
    ) -> Option<(Vec<SqsMessage>, Result<SqsBatchResponse, WholeBatchFailed>)> {
        let queue = self.queue_of(consumer);
        let esm = &self.stack.aws.sqs;
        let records = sqs::receive(esm, &queue).await;
        if records.is_empty() {
            return None;
        }
        let answer = self.invoke(consumer, &records, now).await;
        sqs::settle(esm, &queue, &records, &answer).await;
        let failed = answer
            .as_ref()
            .map_or(true, |a| !a.batch_item_failures.is_empty());
        if failed && consumer == Consumer::Poster {
            // Failed messages come back only after the visibility timeout, when the failed
            // invocation's locks have expired; this harness redelivers at once.
            self.ledger.expire_in_progress().await;
        }
        Some((records, answer))
    }

    /// One batch for `consumer` that must exist and succeed whole.
    pub async fn pass(&self, consumer: Consumer, now: i64) {
        let (records, answer) = self
            .step(consumer, now)
            .await
            .unwrap_or_else(|| panic!("{consumer:?}: no message"));
        let answer = answer.unwrap_or_else(|_| panic!("{consumer:?}: whole batch failed"));
        assert!(
            answer.batch_item_failures.is_empty(),
            "{consumer:?}: {} of {} failed",
            answer.batch_item_failures.len(),
            records.len()
        );
    }

    /// Runs every stage until all queues are empty (at most `rounds` passes).
    pub async fn drain(&self, now: i64) {
        for _ in 0..200 {
            let mut worked = false;
            for consumer in Consumer::ALL {
                while self.step(consumer, now).await.is_some() {
                    worked = true;
                }
            }
            if !worked {
                return;
            }
        }
        panic!("the pipeline did not settle in 200 rounds");
    }

    pub async fn storm(&self, id: &StormId) -> Storm {
        self.posts
            .load(id)
            .await
            .expect("load")
            .expect("storm exists")
    }

    /// Messages waiting in `consumer`'s queue.
    pub async fn depth(&self, consumer: Consumer) -> u64 {
        sqs::depth(&self.stack.aws.sqs, &self.queue_of(consumer)).await
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    now_ms() / 1000
}
