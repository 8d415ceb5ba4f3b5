//! The README's main command, end to end: every deployed function binary behind the local Runtime
//! API, the REST front on real HTTP, the SQS event source mappings on moto's FIFO queues, the
//! scheduler on its (sped-up) schedule, and the Threads emulator — publishing the real input.

use local_runner::{Binaries, FunctionLogs};

/// The workspace build (./scripts/test builds every target first) put the function binaries next
/// to this test's directory; build them only when they are missing.
fn binaries() -> Binaries {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(std::path::Path::to_path_buf))
        .filter(|dir| {
            ["api", "oauth", "poster", "gate"]
                .iter()
                .all(|b| dir.join(b).exists())
        })
        .map(Binaries::Dir)
        .unwrap_or(Binaries::Build {
            profile: "dev".into(),
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_command_publishes_real_input_and_every_check_passes() {
    let (runner, emulator) =
        local_runner::demo::start(free_port(), binaries(), FunctionLogs::Quiet)
            .await
            .expect("stack starts");
    let report = local_runner::demo::run(&runner, &emulator).await;
    let published = emulator.published();
    runner.shutdown().await;
    let report = report.expect("scenario runs");
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(report.ok && failed.is_empty(), "{}", report.text());
    assert!(report.checks.len() >= 15);

    // The storm, as Threads recorded it, is the text split in order.
    let chain = &report.storm_chain;
    assert!(chain.len() > 5, "{}", report.text());
    for pair in chain.windows(2) {
        assert_eq!(pair[1].reply_to.as_deref(), Some(pair[0].media_id.as_str()));
    }
    let texts: Vec<&str> = chain
        .iter()
        .filter_map(|link| {
            published
                .iter()
                .find(|p| p.media_id == link.media_id)
                .and_then(|p| p.text.as_deref())
        })
        .collect();
    let rejoined: String = texts
        .iter()
        .map(|t| t.rsplit_once(' ').map_or(*t, |(body, _numbering)| body))
        .collect::<Vec<_>>()
        .join(" ");
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        words(&rejoined),
        words(local_runner::demo::STORM_TEXT),
        "the parts hold the whole text, in order"
    );

    // What a post costs, as measured.
    assert!(report.costs.published_posts >= 19);
    assert!(
        report.costs.threads_calls_per_post <= 2.5,
        "{}",
        report.text()
    );
    assert!(
        report.costs.aws_requests_per_post < 20.0,
        "{}",
        report.text()
    );
    assert_eq!(report.cold_starts.len(), 10);
}
