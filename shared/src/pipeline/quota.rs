//! Rolling-window quotas per Threads account, reserved atomically for a whole storm: posts and
//! replies over the last 24 hours (Meta's rule, not a midnight reset) and Threads API requests over
//! the last hour (ThreadStorm's own governor).
//!
//! Each account has one item holding a log of its reservations with their exact times. A
//! reservation reads it (strongly consistent), decides in code, and writes it back with one
//! conditional put on a random version token (optimistic concurrency, bounded retries; the losing
//! write returns the winner's item, so a retry costs one call). A reservation that does not fit
//! writes nothing and says when the whole storm will fit.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::clock::EpochMillis;
use crate::store::{Condition, Conditional, Item, StoreError, n, put_if, s};
use crate::threads::UserId;

/// Meta's published-post quota per profile per rolling 24 hours (a carousel counts once).
pub const META_POSTS_PER_DAY: u32 = 250;
/// Meta's reply quota per profile per rolling 24 hours.
pub const META_REPLIES_PER_DAY: u32 = 1000;
/// Meta's smallest app-level budget is 4,800 calls × 10 impressions per app–user pair per rolling
/// 24 hours = 48,000; 2,000 an hour is the most that can be sustained for 24 hours inside it.
pub const MAX_REQUESTS_PER_HOUR: u32 = 2000;

/// Meta's quota window.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The request governor's window.
pub const HOUR: Duration = Duration::from_secs(60 * 60);

/// Fully released reservations remembered per account (see [`Window::prune`]).
pub const RELEASED_KEPT: usize = 256;

/// How many times a reservation re-decides after losing a write to a concurrent one. Each loss
/// means another reservation of the same account was written, so some caller always progresses;
/// with an account's work serialised by its FIFO group, more than one or two is not expected.
pub const MAX_ATTEMPTS: usize = 10;

/// One of the limits a reservation must fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    PostsPerDay,
    RepliesPerDay,
    RequestsPerHour,
}

impl Limit {
    pub const ALL: [Limit; 3] = [
        Limit::PostsPerDay,
        Limit::RepliesPerDay,
        Limit::RequestsPerHour,
    ];

    /// The rolling window the limit counts over.
    pub fn window(self) -> Duration {
        match self {
            Limit::PostsPerDay | Limit::RepliesPerDay => DAY,
            Limit::RequestsPerHour => HOUR,
        }
    }

    /// The highest value an operator may configure.
    pub fn ceiling(self) -> u32 {
        match self {
            Limit::PostsPerDay => META_POSTS_PER_DAY,
            Limit::RepliesPerDay => META_REPLIES_PER_DAY,
            Limit::RequestsPerHour => MAX_REQUESTS_PER_HOUR,
        }
    }

    /// The environment variable that sets the governor.
    pub fn env_var(self) -> &'static str {
        match self {
            Limit::PostsPerDay => "GOVERNOR_POSTS_PER_DAY",
            Limit::RepliesPerDay => "GOVERNOR_REPLIES_PER_DAY",
            Limit::RequestsPerHour => "GOVERNOR_REQUESTS_PER_HOUR",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::PostsPerDay => "posts_per_day",
            Limit::RepliesPerDay => "replies_per_day",
            Limit::RequestsPerHour => "requests_per_hour",
        }
    }

    /// The limit in words, for a reason a person reads.
    pub fn describe(self) -> &'static str {
        match self {
            Limit::PostsPerDay => "posts in 24 hours",
            Limit::RepliesPerDay => "replies in 24 hours",
            Limit::RequestsPerHour => "Threads API requests in an hour",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a governor value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernorError {
    #[error("{limit} must be at least 1; pause publishing with the kill switch instead")]
    Zero { limit: Limit },
    #[error(
        "{limit} = {value} is above {ceiling}, the most Meta allows (posts 250 and replies 1,000 per rolling 24 h; requests: 2,000 an hour fits Meta's smallest app budget)"
    )]
    AboveCeiling {
        limit: Limit,
        value: u32,
        ceiling: u32,
    },
}

/// The operator's governors. Never above Meta's limits: [`Governors::new`] refuses such values
/// rather than clamping them, so an operator who asked for more learns it at start-up instead of
/// getting less than they believe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Governors {
    posts_per_day: u32,
    replies_per_day: u32,
    requests_per_hour: u32,
}

impl Governors {
    /// The seed's defaults: ThreadStorm's own policy.
    pub const SEED: Governors = Governors {
        posts_per_day: 250,
        replies_per_day: 1000,
        requests_per_hour: 200,
    };

    pub fn new(
        posts_per_day: u32,
        replies_per_day: u32,
        requests_per_hour: u32,
    ) -> Result<Self, GovernorError> {
        let governors = Governors {
            posts_per_day,
            replies_per_day,
            requests_per_hour,
        };
        for limit in Limit::ALL {
            let value = governors.get(limit);
            if value == 0 {
                return Err(GovernorError::Zero { limit });
            }
            if value > limit.ceiling() {
                return Err(GovernorError::AboveCeiling {
                    limit,
                    value,
                    ceiling: limit.ceiling(),
                });
            }
        }
        Ok(governors)
    }

    pub fn get(self, limit: Limit) -> u32 {
        match limit {
            Limit::PostsPerDay => self.posts_per_day,
            Limit::RepliesPerDay => self.replies_per_day,
            Limit::RequestsPerHour => self.requests_per_hour,
        }
    }
}

impl Default for Governors {
    fn default() -> Self {
        Governors::SEED
    }
}

/// Posts, replies and Threads API requests: what a reservation asks for, what an account has
/// used, what a release gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub posts: u32,
    pub replies: u32,
    pub requests: u32,
}

impl Counts {
    /// A storm of `parts` (1 post and `parts − 1` replies) that will cost `requests` Threads API
    /// requests (at least create + publish per part).
    pub fn storm(parts: NonZeroU32, requests: u32) -> Counts {
        Counts {
            posts: 1,
            replies: parts.get() - 1,
            requests,
        }
    }

    pub fn get(self, limit: Limit) -> u32 {
        match limit {
            Limit::PostsPerDay => self.posts,
            Limit::RepliesPerDay => self.replies,
            Limit::RequestsPerHour => self.requests,
        }
    }

    pub fn is_zero(self) -> bool {
        self == Counts::default()
    }

    fn min(self, other: Counts) -> Counts {
        Counts {
            posts: self.posts.min(other.posts),
            replies: self.replies.min(other.replies),
            requests: self.requests.min(other.requests),
        }
    }

    fn saturating_sub(self, other: Counts) -> Counts {
        Counts {
            posts: self.posts.saturating_sub(other.posts),
            replies: self.replies.saturating_sub(other.replies),
            requests: self.requests.saturating_sub(other.requests),
        }
    }
}

/// Names one reservation, chosen by the caller (e.g. the storm id): reserving the same id again
/// returns the same reservation, so a redelivered message never counts twice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReservationId(String);

/// Why a value is not a reservation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a reservation id: {0}")]
pub struct InvalidReservationId(String);

impl ReservationId {
    pub const MAX_LEN: usize = 64;

    /// 1–64 bytes of printable ASCII without spaces (a storm id, perhaps with an attempt number).
    pub fn parse(raw: &str) -> Result<Self, InvalidReservationId> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(InvalidReservationId(format!(
                "{} bytes long (1–{} allowed)",
                raw.len(),
                Self::MAX_LEN
            )));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidReservationId(
                "only printable ASCII without spaces is allowed".into(),
            ));
        }
        Ok(ReservationId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ReservationId {
    type Error = InvalidReservationId;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        ReservationId::parse(&raw)
    }
}

impl From<ReservationId> for String {
    fn from(id: ReservationId) -> String {
        id.0
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Capacity held for one storm. Carried with the work (it is `Serialize`) so a later stage can
/// give back what it did not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub account: UserId,
    pub id: ReservationId,
    pub counts: Counts,
    /// When the capacity was taken; it leaves each window one window length later.
    pub at: EpochMillis,
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// The whole demand was reserved (or had been, under the same id).
    Reserved(Reservation),
    /// Not enough capacity now; nothing was consumed. At `not_before` enough old usage has left
    /// every window for the whole demand to fit (if nothing else is reserved meanwhile).
    /// `limit` is the limit that frees last.
    Deferred {
        not_before: EpochMillis,
        limit: Limit,
    },
    /// The demand is larger than the limit itself: it will never fit (e.g. a storm of 1,200 parts
    /// needs 1,199 replies). Reject it; deferring would wait forever.
    NeverFits {
        limit: Limit,
        needed: u32,
        allowed: u32,
    },
}

/// The answer to a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// This capacity was given back now.
    Released { given_back: Counts },
    /// The reservation was released before; nothing changed.
    AlreadyReleased,
    /// The reservation is unknown or has left every window: there is nothing left to give back.
    NothingHeld,
}

/// Why a quota operation failed. All but `Store` and `Contended` are bugs in the caller or a
/// damaged item, not conditions to retry.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("quota of account {account}: {attempts} concurrent writes in a row; retry")]
    Contended { account: UserId, attempts: usize },
    #[error("a reservation must ask for at least one post, reply or request")]
    EmptyDemand,
    #[error("reservation {id} was made with other counts; a reservation id is used for one demand")]
    IdReused { id: ReservationId },
    #[error("reservation {id} was released; a released id cannot reserve again")]
    IdReleased { id: ReservationId },
    #[error("quota item of account {account} is damaged: {reason}")]
    Corrupt { account: UserId, reason: String },
}

/// One reservation in an account's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub at: EpochMillis,
    /// What is still held: the reservation's counts, less what a release gave back.
    pub held: Counts,
    pub released_at: Option<EpochMillis>,
}

/// What an assessment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assessment {
    Fits,
    Deferred {
        not_before: EpochMillis,
        limit: Limit,
    },
    NeverFits {
        limit: Limit,
        needed: u32,
        allowed: u32,
    },
}

/// An account's reservations with their times: the whole state of its quotas, without AWS types.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Window {
    entries: BTreeMap<ReservationId, Entry>,
}

fn in_window(at: EpochMillis, limit: Limit, now: EpochMillis) -> bool {
    now < at.saturating_add(limit.window())
}

impl Window {
    pub fn entries(&self) -> &BTreeMap<ReservationId, Entry> {
        &self.entries
    }

    /// Usage at `now`: posts and replies of the last 24 hours, requests of the last hour.
    pub fn usage(&self, now: EpochMillis) -> Counts {
        let sum = |limit: Limit| {
            self.entries
                .values()
                .filter(|e| in_window(e.at, limit, now))
                .map(|e| u64::from(e.held.get(limit)))
                .sum::<u64>()
        };
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Counts {
            posts: clamp(sum(Limit::PostsPerDay)),
            replies: clamp(sum(Limit::RepliesPerDay)),
            requests: clamp(sum(Limit::RequestsPerHour)),
        }
    }

    /// Whether `demand` fits under `governors` at `now`, and if not, the earliest instant at which
    /// the whole of it does: for each limit, sum the oldest usage until enough has left; the
    /// latest of those instants is when every limit fits at once.
    pub fn assess(&self, governors: Governors, demand: Counts, now: EpochMillis) -> Assessment {
        for limit in Limit::ALL {
            let (needed, allowed) = (demand.get(limit), governors.get(limit));
            if needed > allowed {
                return Assessment::NeverFits {
                    limit,
                    needed,
                    allowed,
                };
            }
        }
        let mut latest: Option<(EpochMillis, Limit)> = None;
        for limit in Limit::ALL {
            let needed = u64::from(demand.get(limit));
            if needed == 0 {
                continue;
            }
            let mut held: Vec<(EpochMillis, u64)> = self
                .entries
                .values()
                .filter(|e| e.held.get(limit) > 0 && in_window(e.at, limit, now))
                .map(|e| (e.at, u64::from(e.held.get(limit))))
                .collect();
            let used: u64 = held.iter().map(|(_, c)| c).sum();
            let allowed = u64::from(governors.get(limit));
            if used + needed <= allowed {
                continue;
            }
            // needed ≤ allowed, so the excess is at most `used`: the loop always reaches it.
            let excess = used + needed - allowed;
            held.sort_by_key(|(at, _)| *at);
            let mut freed = 0;
            for (at, count) in held {
                freed += count;
                if freed >= excess {
                    let free_at = at.saturating_add(limit.window());
                    if latest.is_none_or(|(t, _)| free_at > t) {
                        latest = Some((free_at, limit));
                    }
                    break;
                }
            }
        }
        match latest {
            None => Assessment::Fits,
            Some((not_before, limit)) => Assessment::Deferred { not_before, limit },
        }
    }

    /// Drops what no window counts any more: entries older than 24 hours, and entries that hold
    /// only requests (or nothing, once released) and are older than an hour. A release of a
    /// dropped entry finds nothing held, which is true.
    ///
    /// Fully released entries are kept only so that their id cannot reserve again; beyond
    /// [`RELEASED_KEPT`] the oldest go. Every other entry holds capacity, so the log is bounded by
    /// the limits: at most 250 + 1,000 entries of the day and 2,000 request-only ones of the hour.
    /// With 64-byte ids that is about 300 KB at worst, inside DynamoDB's 400 KB item; an account
    /// that reserves only storms (each with its post) holds at most 250 entries, about 20 KB.
    pub fn prune(&mut self, now: EpochMillis) {
        self.entries.retain(|_, e| {
            let day = in_window(e.at, Limit::PostsPerDay, now);
            let hour = in_window(e.at, Limit::RequestsPerHour, now);
            hour || (day && (e.held.posts > 0 || e.held.replies > 0))
        });
        let mut released: Vec<(EpochMillis, ReservationId)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.held.is_zero())
            .map(|(id, e)| (e.released_at.unwrap_or(e.at), id.clone()))
            .collect();
        if released.len() > RELEASED_KEPT {
            released.sort();
            for (_, id) in &released[..released.len() - RELEASED_KEPT] {
                self.entries.remove(id);
            }
        }
    }

    /// The latest instant at which an entry still counts somewhere; the item may expire after it.
    fn last_counted(&self) -> Option<EpochMillis> {
        self.entries
            .values()
            .map(|e| e.at.saturating_add(DAY))
            .max()
    }
}

/// What a pure decision on a window says to do.
enum Decision<T> {
    /// Write this window (conditionally) and answer `T`.
    Write(Window, T),
    /// Answer `T` without writing.
    Answer(T),
}

fn decide_reserve(
    mut window: Window,
    account: &UserId,
    id: &ReservationId,
    demand: Counts,
    governors: Governors,
    now: EpochMillis,
) -> Result<Decision<Reserve>, QuotaError> {
    window.prune(now);
    if let Some(entry) = window.entries.get(id) {
        if entry.released_at.is_some() {
            return Err(QuotaError::IdReleased { id: id.clone() });
        }
        if entry.held != demand {
            return Err(QuotaError::IdReused { id: id.clone() });
        }
        return Ok(Decision::Answer(Reserve::Reserved(Reservation {
            account: account.clone(),
            id: id.clone(),
            counts: entry.held,
            at: entry.at,
        })));
    }
    match window.assess(governors, demand, now) {
        Assessment::NeverFits {
            limit,
            needed,
            allowed,
        } => Ok(Decision::Answer(Reserve::NeverFits {
            limit,
            needed,
            allowed,
        })),
        Assessment::Deferred { not_before, limit } => {
            Ok(Decision::Answer(Reserve::Deferred { not_before, limit }))
        }
        Assessment::Fits => {
            window.entries.insert(
                id.clone(),
                Entry {
                    at: now,
                    held: demand,
                    released_at: None,
                },
            );
            Ok(Decision::Write(
                window,
                Reserve::Reserved(Reservation {
                    account: account.clone(),
                    id: id.clone(),
                    counts: demand,
                    at: now,
                }),
            ))
        }
    }
}

fn decide_release(
    mut window: Window,
    id: &ReservationId,
    unused: Counts,
    now: EpochMillis,
) -> Decision<Release> {
    window.prune(now);
    let Some(entry) = window.entries.get_mut(id) else {
        return Decision::Answer(Release::NothingHeld);
    };
    if entry.released_at.is_some() {
        return Decision::Answer(Release::AlreadyReleased);
    }
    let given_back = unused.min(entry.held);
    entry.held = entry.held.saturating_sub(given_back);
    entry.released_at = Some(now);
    Decision::Write(window, Release::Released { given_back })
}

/// An account's item as read: its window and the version token a write must match (`None`: no
/// item yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Stored {
    version: Option<String>,
    window: Window,
}

/// Reserves and releases quota in the rate-limits table.
///
/// Item (pk `quota#<account>`, sk `window`): `version` (S, random per write), `reservations`
/// (M: reservation id → S `"<at ms> <posts> <replies> <requests>[ <released_at ms>]"`, compact;
/// see [`Window::prune`] for the size bound),
/// `updated_at` (N, ms), `expires_at` (N, epoch seconds, the table's TTL: when the last entry has
/// left every window).
#[derive(Debug)]
pub struct QuotaStore {
    client: Client,
    table: String,
    governors: Governors,
    cache: Option<Cache>,
}

/// The last item this process read or wrote per account. It can only make a write cheaper (the write is
/// conditional on its version; a stale one loses and returns the current item); an answer that
/// writes nothing is always confirmed by a fresh read.
#[derive(Debug)]
struct Cache {
    capacity: usize,
    items: Mutex<HashMap<UserId, Stored>>,
}

impl Cache {
    fn get(&self, account: &UserId) -> Option<Stored> {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.get(account).cloned()
    }

    fn put(&self, account: &UserId, stored: Stored) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() >= self.capacity && !items.contains_key(account) {
            // Any entry will do: a miss costs one read, never a wrong answer.
            if let Some(evict) = items.keys().next().cloned() {
                items.remove(&evict);
            }
        }
        items.insert(account.clone(), stored);
    }

    fn forget(&self, account: &UserId) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.remove(account);
    }
}

impl QuotaStore {
    pub fn new(client: Client, table: impl Into<String>, governors: Governors) -> Self {
        QuotaStore {
            client,
            table: table.into(),
            governors,
            cache: None,
        }
    }

    /// Remembers the last written item of up to `accounts` accounts, so a warm function's
    /// uncontended reservation is one conditional write instead of a read and a write.
    pub fn with_cache(mut self, accounts: usize) -> Self {
        self.cache = (accounts > 0).then(|| Cache {
            capacity: accounts,
            items: Mutex::new(HashMap::new()),
        });
        self
    }

    pub fn governors(&self) -> Governors {
        self.governors
    }

    /// Reserves `demand` for `account` under `id`, whole or not at all.
    #[tracing::instrument(skip(self), fields(table = %self.table))]
    pub async fn reserve(
        &self,
        account: &UserId,
        id: &ReservationId,
        demand: Counts,
        now: EpochMillis,
    ) -> Result<Reserve, QuotaError> {
        if demand.is_zero() {
            return Err(QuotaError::EmptyDemand);
        }
        let governors = self.governors;
        // Too large for any window: no need to read anything.
        if let Assessment::NeverFits {
            limit,
            needed,
            allowed,
        } = Window::default().assess(governors, demand, now)
        {
            return Ok(Reserve::NeverFits {
                limit,
                needed,
                allowed,
            });
        }
        self.read_decide_write(account, now, |window| {
            decide_reserve(window, account, id, demand, governors, now)
        })
        .await
    }

    /// Gives back `unused` of `reservation` (at most what it holds), once: a second release of the
    /// same reservation changes nothing. Usage that has already left its window is not touched.
    #[tracing::instrument(skip(self), fields(table = %self.table))]
    pub async fn release(
        &self,
        reservation: &Reservation,
        unused: Counts,
        now: EpochMillis,
    ) -> Result<Release, QuotaError> {
        self.release_by_id(&reservation.account, &reservation.id, unused, now)
            .await
    }

    /// [`QuotaStore::release`] by the reservation's account and id, for a stage that did not
    /// carry the reservation itself (the result sink, from a storm's id).
    #[tracing::instrument(skip(self), fields(table = %self.table))]
    pub async fn release_by_id(
        &self,
        account: &UserId,
        id: &ReservationId,
        unused: Counts,
        now: EpochMillis,
    ) -> Result<Release, QuotaError> {
        self.read_decide_write(account, now, |window| {
            Ok(decide_release(window, id, unused, now))
        })
        .await
    }

    /// The account's usage at `now` (one strongly consistent read).
    pub async fn usage(&self, account: &UserId, now: EpochMillis) -> Result<Counts, QuotaError> {
        Ok(self.read(account).await?.window.usage(now))
    }

    /// The account's reservation log, as stored.
    pub async fn window(&self, account: &UserId) -> Result<Window, QuotaError> {
        Ok(self.read(account).await?.window)
    }

    async fn read_decide_write<T>(
        &self,
        account: &UserId,
        now: EpochMillis,
        decide: impl Fn(Window) -> Result<Decision<T>, QuotaError>,
    ) -> Result<T, QuotaError> {
        let mut known = self
            .cache
            .as_ref()
            .and_then(|c| c.get(account))
            .map(|stored| (stored, true));
        for _ in 0..MAX_ATTEMPTS {
            let (stored, cached) = match known.take() {
                Some(k) => k,
                None => (self.read(account).await?, false),
            };
            // A fresh view is worth remembering even when nothing is written.
            let snapshot = (!cached && self.cache.is_some()).then(|| stored.clone());
            match decide(stored.window) {
                // Only a fresh view may answer (or refuse) without writing.
                Ok(Decision::Answer(_)) | Err(_) if cached => continue,
                Err(err) => return Err(err),
                Ok(Decision::Answer(answer)) => {
                    if let (Some(cache), Some(snapshot)) = (&self.cache, snapshot) {
                        cache.put(account, snapshot);
                    }
                    return Ok(answer);
                }
                Ok(Decision::Write(window, answer)) => {
                    let version = new_version();
                    let item = encode(account, &version, &window, now);
                    let condition = match &stored.version {
                        None => Condition::new("attribute_not_exists(#pk)").name("#pk", "pk"),
                        Some(v) => Condition::new("#version = :version")
                            .name("#version", "version")
                            .value(":version", s(v)),
                    };
                    match put_if(&self.client, &self.table, item, condition).await {
                        Ok(Conditional::Written) => {
                            if let Some(cache) = &self.cache {
                                let version = Some(version);
                                cache.put(account, Stored { version, window });
                            }
                            return Ok(answer);
                        }
                        Ok(Conditional::Lost { existing }) => {
                            tracing::debug!(%account, "lost a quota write to a concurrent one");
                            let current = match existing {
                                Some(item) => decode(account, &item)?,
                                None => Stored::default(),
                            };
                            known = Some((current, false));
                        }
                        Err(err) => {
                            if let Some(cache) = &self.cache {
                                cache.forget(account);
                            }
                            return Err(err.into());
                        }
                    }
                }
            }
        }
        Err(QuotaError::Contended {
            account: account.clone(),
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn read(&self, account: &UserId) -> Result<Stored, QuotaError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(account)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::new("GetItem", &self.table, err))?;
        match output.item() {
            Some(item) => decode(account, item),
            None => Ok(Stored::default()),
        }
    }
}

fn new_version() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

fn key(account: &UserId) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("quota#{account}"))),
        ("sk".to_owned(), s("window")),
    ])
}

fn encode(account: &UserId, version: &str, window: &Window, now: EpochMillis) -> Item {
    let reservations = window
        .entries
        .iter()
        .map(|(id, e)| {
            let mut entry = format!(
                "{} {} {} {}",
                e.at.get(),
                e.held.posts,
                e.held.replies,
                e.held.requests
            );
            if let Some(released) = e.released_at {
                entry.push_str(&format!(" {}", released.get()));
            }
            (id.as_str().to_owned(), s(entry))
        })
        .collect();
    let expires = window.last_counted().unwrap_or(now).ceil_seconds();
    let mut item = key(account);
    item.extend([
        ("version".to_owned(), s(version)),
        ("reservations".to_owned(), AttributeValue::M(reservations)),
        ("updated_at".to_owned(), n(now.get())),
        ("expires_at".to_owned(), n(expires.get())),
    ]);
    item
}

/// `at posts replies requests [released_at]`, times in epoch milliseconds.
fn parse_entry(text: &str) -> Option<Entry> {
    let mut fields = text.split(' ');
    let mut next = || fields.next();
    let at = next()?.parse().ok()?;
    let held = Counts {
        posts: next()?.parse().ok()?,
        replies: next()?.parse().ok()?,
        requests: next()?.parse().ok()?,
    };
    let released_at = match next() {
        None => None,
        Some(ms) => Some(EpochMillis::new(ms.parse().ok()?)),
    };
    if next().is_some() {
        return None;
    }
    Some(Entry {
        at: EpochMillis::new(at),
        held,
        released_at,
    })
}

fn decode(account: &UserId, item: &Item) -> Result<Stored, QuotaError> {
    let corrupt = |reason: String| QuotaError::Corrupt {
        account: account.clone(),
        reason,
    };
    let version = match item.get("version") {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => return Err(corrupt("no string `version`".into())),
    };
    let mut entries = BTreeMap::new();
    let reservations = match item.get("reservations") {
        Some(AttributeValue::M(m)) => m,
        None => return Err(corrupt("no `reservations`".into())),
        Some(_) => return Err(corrupt("`reservations` is not a map".into())),
    };
    for (raw_id, value) in reservations {
        let id = ReservationId::parse(raw_id).map_err(|e| corrupt(e.to_string()))?;
        let entry = match value {
            AttributeValue::S(text) => parse_entry(text),
            _ => None,
        }
        .ok_or_else(|| {
            corrupt(format!(
                "reservation {id}: {value:?} is not `at posts replies requests [released_at]`"
            ))
        })?;
        entries.insert(id, entry);
    }
    Ok(Stored {
        version: Some(version),
        window: Window { entries },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: EpochMillis = EpochMillis::new(1_800_000_000_000);
    const MINUTE: Duration = Duration::from_secs(60);

    fn id(raw: &str) -> ReservationId {
        ReservationId::parse(raw).unwrap()
    }

    fn account() -> UserId {
        UserId::parse("17841400000000001").unwrap()
    }

    fn posts(n: u32) -> Counts {
        Counts {
            posts: n,
            replies: 0,
            requests: 0,
        }
    }

    fn window(entries: &[(&str, EpochMillis, Counts)]) -> Window {
        Window {
            entries: entries
                .iter()
                .map(|(i, at, held)| {
                    (
                        id(i),
                        Entry {
                            at: *at,
                            held: *held,
                            released_at: None,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn governors_refuse_zero_and_anything_above_meta() {
        assert_eq!(Governors::new(250, 1000, 200), Ok(Governors::SEED));
        assert_eq!(
            Governors::new(251, 1000, 200),
            Err(GovernorError::AboveCeiling {
                limit: Limit::PostsPerDay,
                value: 251,
                ceiling: 250
            })
        );
        assert!(matches!(
            Governors::new(250, 1001, 200),
            Err(GovernorError::AboveCeiling {
                limit: Limit::RepliesPerDay,
                ..
            })
        ));
        assert!(matches!(
            Governors::new(250, 1000, 2001),
            Err(GovernorError::AboveCeiling {
                limit: Limit::RequestsPerHour,
                ..
            })
        ));
        assert_eq!(
            Governors::new(0, 1000, 200),
            Err(GovernorError::Zero {
                limit: Limit::PostsPerDay
            })
        );
        assert_eq!(Governors::default(), Governors::SEED);
    }

    #[test]
    fn a_storm_is_one_post_and_the_rest_replies() {
        let five = NonZeroU32::new(5).unwrap();
        assert_eq!(
            Counts::storm(five, 10),
            Counts {
                posts: 1,
                replies: 4,
                requests: 10
            }
        );
    }

    #[test]
    fn usage_counts_each_limit_over_its_own_window() {
        let w = window(&[
            (
                "a",
                T0,
                Counts {
                    posts: 1,
                    replies: 2,
                    requests: 6,
                },
            ),
            (
                "b",
                T0.saturating_add(90 * MINUTE),
                Counts {
                    posts: 1,
                    replies: 0,
                    requests: 2,
                },
            ),
        ]);
        let now = T0.saturating_add(100 * MINUTE);
        assert_eq!(
            w.usage(now),
            Counts {
                posts: 2,
                replies: 2,
                requests: 2
            }
        );
        // Exactly 24 h after `a`, it no longer counts.
        assert_eq!(w.usage(T0.saturating_add(DAY)).posts, 1);
        assert_eq!(
            w.usage(
                T0.saturating_add(DAY)
                    .saturating_sub(Duration::from_millis(1))
            )
            .posts,
            2
        );
    }

    #[test]
    fn deferral_waits_for_the_oldest_usage_that_makes_room_for_the_whole_demand() {
        let g = Governors::new(3, 1000, 200).unwrap();
        let w = window(&[
            ("a", T0, posts(1)),
            ("b", T0.saturating_add(MINUTE), posts(1)),
            ("c", T0.saturating_add(2 * MINUTE), posts(1)),
        ]);
        let now = T0.saturating_add(10 * MINUTE);
        assert_eq!(
            w.assess(g, posts(1), now),
            Assessment::Deferred {
                not_before: T0.saturating_add(DAY),
                limit: Limit::PostsPerDay
            }
        );
        assert_eq!(
            w.assess(g, posts(2), now),
            Assessment::Deferred {
                not_before: T0.saturating_add(MINUTE).saturating_add(DAY),
                limit: Limit::PostsPerDay
            }
        );
        assert_eq!(
            w.assess(g, posts(1), T0.saturating_add(DAY)),
            Assessment::Fits
        );
        assert_eq!(
            w.assess(g, posts(4), now),
            Assessment::NeverFits {
                limit: Limit::PostsPerDay,
                needed: 4,
                allowed: 3
            }
        );
    }

    #[test]
    fn the_limit_that_frees_last_decides() {
        let g = Governors::new(250, 1000, 10).unwrap();
        let w = window(&[
            ("a", T0, posts(250)),
            (
                "b",
                T0.saturating_add(30 * MINUTE),
                Counts {
                    posts: 0,
                    replies: 0,
                    requests: 10,
                },
            ),
        ]);
        let now = T0.saturating_add(40 * MINUTE);
        let demand = Counts {
            posts: 1,
            replies: 0,
            requests: 2,
        };
        assert_eq!(
            w.assess(g, demand, now),
            Assessment::Deferred {
                not_before: T0.saturating_add(DAY),
                limit: Limit::PostsPerDay
            }
        );
        // Without the post, only the hourly governor binds.
        let requests_only = Counts {
            posts: 0,
            replies: 0,
            requests: 2,
        };
        assert_eq!(
            w.assess(g, requests_only, now),
            Assessment::Deferred {
                not_before: T0.saturating_add(90 * MINUTE),
                limit: Limit::RequestsPerHour
            }
        );
    }

    #[test]
    fn pruning_keeps_what_a_window_still_counts() {
        let mut w = window(&[
            ("old", T0, posts(1)),
            (
                "requests-only",
                T0.saturating_add(30 * MINUTE),
                Counts {
                    posts: 0,
                    replies: 0,
                    requests: 3,
                },
            ),
            ("recent", T0.saturating_add(23 * 60 * MINUTE), posts(1)),
        ]);
        w.prune(T0.saturating_add(DAY));
        let kept: Vec<_> = w.entries.keys().map(ReservationId::as_str).collect();
        assert_eq!(kept, ["recent"]);
    }

    #[test]
    fn only_the_newest_fully_released_entries_are_kept() {
        let mut w = Window::default();
        for i in 0..(RELEASED_KEPT + 10) {
            let at = T0.saturating_add(Duration::from_millis(i as u64));
            let entry = Entry {
                at,
                held: Counts::default(),
                released_at: Some(at),
            };
            w.entries.insert(id(&format!("r{i:04}")), entry);
        }
        w.entries.insert(
            id("held"),
            Entry {
                at: T0,
                held: posts(1),
                released_at: None,
            },
        );
        w.prune(T0.saturating_add(MINUTE));
        assert_eq!(w.entries.len(), RELEASED_KEPT + 1);
        assert!(w.entries.contains_key(&id("held")));
        assert!(!w.entries.contains_key(&id("r0009")));
        assert!(w.entries.contains_key(&id("r0010")));
    }

    #[test]
    fn release_gives_back_at_most_what_is_held_and_only_once() {
        let w = window(&[("a", T0, posts(1))]);
        let Decision::Write(w, Release::Released { given_back }) =
            decide_release(w, &id("a"), posts(5), T0)
        else {
            panic!("expected a release");
        };
        assert_eq!(given_back, posts(1));
        assert_eq!(w.usage(T0), Counts::default());
        assert!(matches!(
            decide_release(w.clone(), &id("a"), posts(1), T0),
            Decision::Answer(Release::AlreadyReleased)
        ));
        assert!(matches!(
            decide_release(w, &id("zzz"), posts(1), T0),
            Decision::Answer(Release::NothingHeld)
        ));
    }

    #[test]
    fn reserving_an_id_again_answers_the_first_reservation_or_refuses_a_different_demand() {
        let w = window(&[("s1", T0, posts(1))]);
        let later = T0.saturating_add(MINUTE);
        let g = Governors::SEED;
        let Ok(Decision::Answer(Reserve::Reserved(r))) =
            decide_reserve(w.clone(), &account(), &id("s1"), posts(1), g, later)
        else {
            panic!("expected the existing reservation");
        };
        assert_eq!(r.at, T0);
        assert!(matches!(
            decide_reserve(w, &account(), &id("s1"), posts(2), g, later),
            Err(QuotaError::IdReused { .. })
        ));
    }

    #[test]
    fn items_round_trip_and_damage_is_reported_not_panicked() {
        let mut w = window(&[
            ("a", T0, posts(1)),
            (
                "b",
                T0.saturating_add(MINUTE),
                Counts {
                    posts: 1,
                    replies: 4,
                    requests: 10,
                },
            ),
        ]);
        if let Some(e) = w.entries.get_mut(&id("a")) {
            e.released_at = Some(T0.saturating_add(MINUTE));
        }
        let item = encode(&account(), "v1", &w, T0);
        let stored = decode(&account(), &item).unwrap();
        assert_eq!(stored.window, w);
        assert_eq!(stored.version.as_deref(), Some("v1"));
        assert_eq!(
            item.get("expires_at"),
            Some(&n(T0
                .saturating_add(MINUTE)
                .saturating_add(DAY)
                .ceil_seconds()
                .get()))
        );

        for (attribute, value) in [
            ("version", n(1)),
            ("reservations", s("x")),
            (
                "reservations",
                AttributeValue::M(HashMap::from([("a".to_owned(), n(1))])),
            ),
            (
                "reservations",
                AttributeValue::M(HashMap::from([("a".to_owned(), s("soon 1 0 0"))])),
            ),
            (
                "reservations",
                AttributeValue::M(HashMap::from([("a".to_owned(), s("1 -1 0 0"))])),
            ),
            (
                "reservations",
                AttributeValue::M(HashMap::from([("a".to_owned(), s("1 1 0"))])),
            ),
            (
                "reservations",
                AttributeValue::M(HashMap::from([("a".to_owned(), s("1 1 0 0 5 6"))])),
            ),
            (
                "reservations",
                AttributeValue::M(HashMap::from([("a b".to_owned(), s("1 1 0 0"))])),
            ),
        ] {
            let mut damaged = item.clone();
            damaged.insert(attribute.to_owned(), value);
            assert!(
                matches!(
                    decode(&account(), &damaged),
                    Err(QuotaError::Corrupt { .. })
                ),
                "{attribute}"
            );
        }
    }

    /// DynamoDB's item size rules, near enough: names and strings by their UTF-8 length, numbers
    /// by about one byte per two digits, one byte per map element and three per map.
    fn item_size(item: &Item) -> usize {
        fn value(v: &AttributeValue) -> usize {
            match v {
                AttributeValue::S(text) => text.len(),
                AttributeValue::N(number) => number.len().div_ceil(2) + 1,
                AttributeValue::M(map) => {
                    3 + map
                        .iter()
                        .map(|(k, v)| k.len() + value(v) + 1)
                        .sum::<usize>()
                }
                _ => 0,
            }
        }
        item.iter().map(|(k, v)| k.len() + value(v)).sum()
    }

    #[test]
    fn the_largest_possible_item_fits_in_dynamodb() {
        let now = T0.saturating_add(DAY);
        let mut w = Window::default();
        let mut add = |i: usize, at: EpochMillis, held: Counts, released_at| {
            let id = id(&format!("{i:0>64}"));
            w.entries.insert(
                id,
                Entry {
                    at,
                    held,
                    released_at,
                },
            );
        };
        let mut i = 0;
        for unit in [
            posts(1),
            Counts {
                posts: 0,
                replies: 1,
                requests: 0,
            },
        ] {
            let count = if unit.posts == 1 { 250 } else { 1000 };
            for _ in 0..count {
                add(i, now.saturating_sub(HOUR * 2), unit, None);
                i += 1;
            }
        }
        for _ in 0..(MAX_REQUESTS_PER_HOUR as usize) {
            let requests = Counts {
                posts: 0,
                replies: 0,
                requests: 1,
            };
            add(i, now.saturating_sub(MINUTE), requests, None);
            i += 1;
        }
        for _ in 0..RELEASED_KEPT {
            add(i, now.saturating_sub(MINUTE), Counts::default(), Some(now));
            i += 1;
        }
        w.prune(now);
        assert_eq!(w.entries.len(), 250 + 1000 + 2000 + RELEASED_KEPT);
        let size = item_size(&encode(&account(), "0123456789abcdef", &w, now));
        assert!(size < 350_000, "{size} bytes");
    }

    #[test]
    fn reservation_ids_are_bounded_printable_ascii() {
        assert!(ReservationId::parse("storm#01J8Z").is_ok());
        assert!(ReservationId::parse("").is_err());
        assert!(ReservationId::parse("a b").is_err());
        assert!(ReservationId::parse("é").is_err());
        assert!(ReservationId::parse(&"x".repeat(64)).is_ok());
        assert!(ReservationId::parse(&"x".repeat(65)).is_err());
        assert!(serde_json::from_str::<ReservationId>("\"\"").is_err());
    }
}
