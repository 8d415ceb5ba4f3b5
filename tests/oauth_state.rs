//! Case O2's state rules against moto: single use, bound to the browser, ten minutes of life.

use local_stack::testing::TestStack;
use threadstorm::oauth::state::{STATE_LIFETIME_SECONDS, StateError, StateRejection, StateStore};
use threadstorm::resources::Resource;

const NOW: i64 = 1_800_000_000;

async fn store() -> (TestStack, StateStore) {
    let t = TestStack::new().await;
    let store = StateStore::new(t.aws.dynamodb.clone(), t.name(Resource::SessionsTable));
    (t, store)
}

fn rejection(result: Result<impl std::fmt::Debug, StateError>) -> StateRejection {
    match result {
        Err(StateError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_state_is_consumed_once_by_its_browser() {
    let (_t, store) = store().await;
    let issued = store.issue("/app", NOW).await.unwrap();
    let consumed = store
        .consume(Some(&issued.state), Some(&issued.browser_nonce), NOW + 5)
        .await
        .unwrap();
    assert_eq!(consumed.verifier, issued.verifier);
    assert_eq!(consumed.return_to, "/app");

    let replay = store
        .consume(Some(&issued.state), Some(&issued.browser_nonce), NOW + 6)
        .await;
    assert_eq!(rejection(replay), StateRejection::UnknownOrUsed);
}

#[tokio::test]
async fn another_browser_is_refused_and_does_not_burn_the_state() {
    let (_t, store) = store().await;
    let issued = store.issue("/", NOW).await.unwrap();
    let foreign = store
        .consume(Some(&issued.state), Some("browser-b-nonce"), NOW + 1)
        .await;
    assert_eq!(rejection(foreign), StateRejection::OtherBrowser);
    assert!(
        store
            .consume(Some(&issued.state), Some(&issued.browser_nonce), NOW + 2)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_expired_state_is_refused_though_ttl_has_not_deleted_it() {
    let (_t, store) = store().await;
    let issued = store.issue("/", NOW).await.unwrap();
    let late = store
        .consume(
            Some(&issued.state),
            Some(&issued.browser_nonce),
            NOW + 11 * 60,
        )
        .await;
    assert_eq!(rejection(late), StateRejection::Expired);
    let at_the_edge = store
        .consume(
            Some(&issued.state),
            Some(&issued.browser_nonce),
            NOW + STATE_LIFETIME_SECONDS,
        )
        .await;
    assert_eq!(rejection(at_the_edge), StateRejection::Expired);
}

#[tokio::test]
async fn missing_state_cookie_or_unknown_state_is_refused() {
    let (_t, store) = store().await;
    let issued = store.issue("/", NOW).await.unwrap();
    assert_eq!(
        rejection(store.consume(None, Some(&issued.browser_nonce), NOW).await),
        StateRejection::Missing
    );
    assert_eq!(
        rejection(
            store
                .consume(Some(""), Some(&issued.browser_nonce), NOW)
                .await
        ),
        StateRejection::Missing
    );
    assert_eq!(
        rejection(store.consume(Some(&issued.state), None, NOW).await),
        StateRejection::NoCookie
    );
    let forged = "A".repeat(43);
    assert_eq!(
        rejection(
            store
                .consume(Some(&forged), Some(&issued.browser_nonce), NOW)
                .await
        ),
        StateRejection::UnknownOrUsed
    );
    let huge = "A".repeat(10_000);
    assert_eq!(
        rejection(
            store
                .consume(Some(&huge), Some(&issued.browser_nonce), NOW)
                .await
        ),
        StateRejection::Missing
    );
}

#[tokio::test]
async fn only_hashes_of_the_state_and_browser_are_stored() {
    let (t, store) = store().await;
    let issued = store.issue("/", NOW).await.unwrap();
    let scan = t
        .aws
        .dynamodb
        .scan()
        .table_name(t.name(Resource::SessionsTable))
        .send()
        .await
        .unwrap();
    let dump = format!("{:?}", scan.items());
    assert!(!dump.contains(&issued.state));
    assert!(!dump.contains(&issued.browser_nonce));
}
