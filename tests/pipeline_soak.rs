//! The pipeline under load and faults: 500 posts across 10 accounts (single posts and two-part
//! storms), every Threads call failing transiently one time in five. Every post must be on
//! Threads exactly once, each account's posts in the order they were submitted, every storm a
//! correct reply chain — proved from the emulator's record of every publish.

use std::collections::HashMap;
use std::sync::Arc;

use threads_emulator::{EmulatorConfig, Endpoint, Fault, FaultPlan, TestUser};
use threadstorm::posts::{AccountId, PartContent, StatusName};
use threadstorm_tests::support::world::{World, case_b1_policy, now};

const ACCOUNTS: usize = 10;
const SINGLE_POSTS: usize = 30;
const STORMS: usize = 10; // of two parts: 30 + 2 × 10 = 50 posts per account

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_posts_with_one_call_in_five_failing_are_each_published_once_in_order() {
    let ids: Vec<String> = (0..ACCOUNTS)
        .map(|i| format!("178414000000001{i:02}"))
        .collect();
    let mut config = EmulatorConfig {
        fault_seed: 20_261_203,
        ..EmulatorConfig::default()
    };
    config.users.extend(
        ids.iter()
            .enumerate()
            .map(|(i, id)| TestUser::new(id, &format!("soak_{i}"), &format!("Soak {i}"))),
    );
    let w = World::with(config, Arc::new(case_b1_policy())).await;
    let owners: Vec<String> = (0..ACCOUNTS).map(|i| format!("owner-{i}")).collect();
    for (id, owner) in ids.iter().zip(&owners) {
        w.connect(owner, id).await;
    }

    // Submission order per account: storms interleaved with single posts.
    let t = now();
    let mut expected: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    let mut storm_ids = Vec::new();
    for round in 0..(SINGLE_POSTS + STORMS) {
        for (a, (id, owner)) in ids.iter().zip(&owners).enumerate() {
            let texts: Vec<String> = if round % 4 == 3 {
                vec![
                    format!("account {a} storm {round} opens"),
                    format!("account {a} storm {round} replies"),
                ]
            } else {
                vec![format!("account {a} post {round}")]
            };
            let account = AccountId::parse(id).unwrap();
            let parts = texts
                .iter()
                .map(|t| PartContent::text(t.as_str()))
                .collect();
            let storm = w.submit_parts(owner, &account, parts, t).await;
            storm_ids.push(storm.id);
            expected.entry(id.clone()).or_default().push(texts);
        }
    }
    let total_posts: usize = expected.values().flatten().map(Vec::len).sum();
    assert_eq!(total_posts, 500);

    w.emu
        .inject(FaultPlan::rate(Endpoint::Any, Fault::Transient, 0.2));
    w.drain(t).await;
    w.emu.clear_faults();

    // Every storm ended published.
    let mut not_published = Vec::new();
    for id in &storm_ids {
        let storm = w.storm(id).await;
        if storm.status.name() != StatusName::Published {
            not_published.push((id.clone(), storm.status));
        }
    }
    assert!(not_published.is_empty(), "{not_published:?}");

    // Exactly once, per-account order, reply chains.
    let published = w.emu.published();
    assert_eq!(published.len(), 500, "each post once");
    let mut by_text = HashMap::new();
    for post in &published {
        let text = post.text.clone().unwrap_or_default();
        assert!(by_text.insert(text.clone(), post).is_none(), "{text} twice");
    }
    for (account, storms) in &expected {
        let roots: Vec<&str> = published
            .iter()
            .filter(|p| &p.owner_user_id == account && p.reply_to_id.is_none())
            .filter_map(|p| p.text.as_deref())
            .collect();
        let wanted: Vec<&str> = storms.iter().map(|s| s[0].as_str()).collect();
        assert_eq!(
            roots, wanted,
            "account {account}: storms in submission order"
        );
        for storm in storms.iter().filter(|s| s.len() == 2) {
            let root = by_text[&storm[0]];
            let reply = by_text[&storm[1]];
            assert_eq!(reply.reply_to_id.as_deref(), Some(root.media_id.as_str()));
            assert!(reply.sequence > root.sequence);
        }
    }
    let calls = w.emu.calls();
    eprintln!(
        "soak: {} Threads API calls for 500 posts ({:.2} per post) with 20% transient faults: {calls:?}",
        calls.api_total(),
        calls.api_total() as f64 / 500.0
    );
    eprintln!(
        "soak: AWS requests by the functions: {:?}",
        w.counter.snapshot()
    );
}
