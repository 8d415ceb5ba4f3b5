//! The token refresher against moto and the emulator: nothing before a token is 24 hours old,
//! one refresh inside the window with the new expiry from `expires_in`, and on 190 the account is
//! marked needs_reauth with its old token kept.

use std::sync::Arc;

use local_stack::StackOptions;
use local_stack::testing::{LOCAL_BASE_URL, TestStack};
use threads_emulator::{Emulator, EmulatorConfig};
use threadstorm::accounts::{Account, AccountStatus, AccountStore};
use threadstorm::clock::ManualClock;
use threadstorm::config::Config;
use threadstorm::refresher::{RefreshReport, Refresher};
use threadstorm::resources::{Resource, TOKEN_REFRESHER};
use threadstorm::runtime::Deps;
use threadstorm::threads::UserId;
use threadstorm::users::UserId as OwnerId;
use threadstorm::vault::{Purpose, TokenOwner};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

struct World {
    _t: TestStack,
    emu: Emulator,
    refresher: Refresher,
    accounts: AccountStore,
    account: Account,
    owner: TokenOwner,
    token: String,
}

async fn world() -> World {
    let t = TestStack::with_options(StackOptions::local(LOCAL_BASE_URL)).await;
    let emu = Emulator::start(EmulatorConfig::default()).await.unwrap();
    emu.clock().set(NOW);
    let mut env = t.env(&TOKEN_REFRESHER);
    env.insert("THREADS_GRAPH_URL".into(), emu.base_url());
    env.insert("THREADS_AUTH_URL".into(), emu.authorize_url());
    let config = Config::from_lookup(&TOKEN_REFRESHER, |k| env.get(k).cloned()).unwrap();
    let deps = Deps {
        function: &TOKEN_REFRESHER,
        config,
        aws: t.aws.clone(),
    };
    let mut refresher = Refresher::from_deps(&deps).await.unwrap();

    let threads_user = emu.config().users[0].id.clone();
    let token = emu.issue_long_lived_token(&threads_user);
    let owner = TokenOwner::new(OwnerId::new_random(), threads_user.clone());
    let sealed = refresher
        .vault
        .seal(&token, &owner, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    let account = Account {
        account_id: UserId::parse(&threads_user).unwrap(),
        owner_user_id: owner.user_id.as_str().to_owned(),
        username: "creator".into(),
        status: AccountStatus::Connected,
        sealed_token: Some(sealed.into_string()),
        token_issued_at: NOW,
        token_expires_at: NOW + 60 * DAY,
        connected_at: NOW,
    };
    let accounts = AccountStore::new(t.aws.dynamodb.clone(), t.name(Resource::AccountsTable));
    accounts.connect(&account).await.unwrap();
    refresher.clock = Arc::new(ManualClock::at_unix(NOW));
    World {
        _t: t,
        emu,
        refresher,
        accounts,
        account,
        owner,
        token,
    }
}

fn at(w: &mut World, seconds: i64) {
    w.refresher.clock = Arc::new(ManualClock::at_unix(seconds));
    w.emu.clock().set(seconds);
}

#[tokio::test]
async fn nothing_is_refreshed_outside_the_window_or_before_24_hours() {
    let mut w = world().await;
    // Fresh token, far from expiry: not even due.
    assert_eq!(w.refresher.run().await.unwrap(), RefreshReport::default());
    // A 7-week window makes it due, but it is an hour old: no call.
    w.refresher.window = std::time::Duration::from_secs(60 * DAY as u64);
    at(&mut w, NOW + 3600);
    let report = w.refresher.run().await.unwrap();
    assert_eq!((report.due, report.too_young, report.refreshed), (1, 1, 0));
    assert_eq!(w.emu.calls().refresh, 0);
}

#[tokio::test]
async fn a_due_token_is_refreshed_once_with_the_expiry_threads_gives() {
    let mut w = world().await;
    let later = NOW + 55 * DAY;
    at(&mut w, later);
    let report = w.refresher.run().await.unwrap();
    assert_eq!((report.due, report.refreshed), (1, 1), "{report:?}");
    assert_eq!(w.emu.calls().refresh, 1);

    let stored = w
        .accounts
        .get(&w.account.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.token_issued_at, later);
    assert_eq!(
        stored.token_expires_at,
        later + 5_184_000,
        "60 days from the refresh, from expires_in"
    );
    assert_ne!(stored.sealed_token, w.account.sealed_token);
    let fresh = w
        .refresher
        .vault
        .unseal(
            stored.sealed_token.as_deref().unwrap(),
            &w.owner,
            Purpose::ThreadsAccessToken,
            "test",
        )
        .await
        .unwrap();
    assert_ne!(fresh.expose(), w.token, "a new token was stored");

    // The next run finds nothing due.
    assert_eq!(w.refresher.run().await.unwrap().due, 0);
    assert_eq!(w.emu.calls().refresh, 1);
}

#[tokio::test]
async fn on_190_the_account_needs_reauth_and_keeps_its_old_token() {
    let mut w = world().await;
    w.emu.revoke_token(&w.token);
    at(&mut w, NOW + 55 * DAY);
    let report = w.refresher.run().await.unwrap();
    assert_eq!((report.due, report.needs_reauth), (1, 1), "{report:?}");
    let stored = w
        .accounts
        .get(&w.account.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::NeedsReauth);
    assert_eq!(
        stored.sealed_token, w.account.sealed_token,
        "the old token is kept"
    );
    // Not retried in a loop: it left the refresh index.
    assert_eq!(w.refresher.run().await.unwrap().due, 0);
    assert_eq!(w.emu.calls().refresh, 1);
}

#[tokio::test]
async fn an_expired_token_is_not_sent_to_threads() {
    let mut w = world().await;
    at(&mut w, NOW + 61 * DAY);
    let report = w.refresher.run().await.unwrap();
    assert_eq!(report.needs_reauth, 1);
    assert_eq!(w.emu.calls().refresh, 0);
}
