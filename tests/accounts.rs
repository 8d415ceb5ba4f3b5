//! The accounts store against moto: ownership is exclusive, the refresh index holds exactly the
//! connected accounts, and token replacement and status changes are conditional.

use local_stack::testing::TestStack;
use threadstorm::accounts::{Account, AccountError, AccountStatus, AccountStore};
use threadstorm::resources::Resource;
use threadstorm::threads::UserId;

fn account(id: &str, owner: &str, expires_at: i64) -> Account {
    Account {
        account_id: UserId::parse(id).unwrap(),
        owner_user_id: owner.to_owned(),
        username: format!("user{id}"),
        status: AccountStatus::Connected,
        sealed_token: Some(format!("sealed-{id}")),
        token_issued_at: expires_at - 5_184_000,
        token_expires_at: expires_at,
        connected_at: expires_at - 5_184_000,
    }
}

async fn store() -> (TestStack, AccountStore) {
    let t = TestStack::new().await;
    let store = AccountStore::new(t.aws.dynamodb.clone(), t.name(Resource::AccountsTable));
    (t, store)
}

#[tokio::test]
async fn an_account_held_by_one_user_cannot_be_taken_by_another() {
    let (_t, store) = store().await;
    let mine = account("90071992547409931", "user-a", 2_000_000_000);
    store.connect(&mine).await.unwrap();
    // Reconnecting by the same owner is fine (a fresh token after needs_reauth).
    store.connect(&mine).await.unwrap();
    let theirs = account("90071992547409931", "user-b", 2_000_000_000);
    assert!(matches!(
        store.connect(&theirs).await,
        Err(AccountError::OwnedByAnother(_))
    ));
    let stored = store.get(&mine.account_id).await.unwrap().unwrap();
    assert_eq!(stored, mine);
    assert_eq!(store.list_by_owner("user-a").await.unwrap(), vec![mine]);
    assert!(store.list_by_owner("user-b").await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_index_lists_only_connected_accounts_expiring_soon() {
    let (_t, store) = store().await;
    store.connect(&account("1001", "u", 1_000)).await.unwrap();
    store.connect(&account("1002", "u", 2_000)).await.unwrap();
    store.connect(&account("1003", "u", 3_000)).await.unwrap();
    store
        .mark_needs_reauth(&UserId::parse("1001").unwrap())
        .await
        .unwrap();
    let due: Vec<String> = store
        .expiring_before(2_500)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.account_id.as_str().to_owned())
        .collect();
    assert_eq!(due, ["1002"]);
}

#[tokio::test]
async fn token_replacement_is_conditional_on_the_token_refreshed() {
    let (_t, store) = store().await;
    let a = account("2001", "u", 5_000);
    store.connect(&a).await.unwrap();
    let id = a.account_id.clone();
    assert!(
        store
            .replace_token(&id, "sealed-2001", "sealed-new", 10, 9_000)
            .await
            .unwrap()
    );
    // A second refresher that read the old token loses.
    assert!(
        !store
            .replace_token(&id, "sealed-2001", "sealed-other", 11, 9_500)
            .await
            .unwrap()
    );
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.sealed_token.as_deref(), Some("sealed-new"));
    assert_eq!(stored.token_expires_at, 9_000);
}

#[tokio::test]
async fn disconnect_deletes_the_token() {
    let (_t, store) = store().await;
    let a = account("3001", "u", 5_000);
    store.connect(&a).await.unwrap();
    assert!(store.disconnect(&a.account_id).await.unwrap());
    let stored = store.get(&a.account_id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Disconnected);
    assert_eq!(stored.sealed_token, None);
    assert!(store.expiring_before(i64::MAX).await.unwrap().is_empty());
    assert!(
        !store
            .disconnect(&UserId::parse("3999").unwrap())
            .await
            .unwrap(),
        "unknown account"
    );
}
