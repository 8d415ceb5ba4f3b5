//! Brand protection for ThreadStorm's own words: `GET /` names the product, its version and the
//! three disclaimers, and no text the service serves or documents contains one of the prohibited
//! brand terms (matched as the content policy matches posts: normalised, case-folded, whole words).

use std::path::{Path, PathBuf};

use lambda_http::Body;
use local_stack::testing::TestStack;
use serde_json::Value;
use threadstorm::api::Api;
use threadstorm::config::Config;
use threadstorm::policy::ProhibitedTerms;
use threadstorm::product;
use threadstorm::resources::API;
use threadstorm::runtime::Deps;
use threadstorm_tests::support::gateway::event;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(res: &lambda_http::Response<Body>) -> String {
    match res.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn the_root_names_the_product_its_version_and_the_disclaimers() {
    let t = TestStack::new().await;
    let env = t.env(&API);
    let config = Config::from_lookup(&API, |k| env.get(k).cloned()).unwrap();
    let api = Api::from_deps(&Deps {
        function: &API,
        config,
        aws: t.aws.clone(),
    })
    .await
    .unwrap();
    let terms = ProhibitedTerms::default();

    let json = api.handle(event("GET", "/", &[], &[], None, false)).await;
    assert_eq!(json.status(), 200);
    let about: Value = serde_json::from_str(&text(&json)).unwrap();
    assert_eq!(about["name"], product::NAME);
    assert_eq!(about["version"], product::VERSION);
    assert_eq!(
        about["disclaimers"],
        serde_json::json!(product::DISCLAIMERS)
    );

    let html = api
        .handle(event(
            "GET",
            "/",
            &[],
            &[("Accept", "text/html")],
            None,
            false,
        ))
        .await;
    let page = text(&html);
    assert!(page.contains(product::VERSION));
    for disclaimer in product::DISCLAIMERS {
        assert!(page.contains(disclaimer), "{disclaimer}");
    }
    let csp = html.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    // Refusals are served text too.
    for (method, path) in [
        ("GET", "/v1/posts"),
        ("POST", "/v1/nothing"),
        ("PUT", "/v1/me"),
    ] {
        let res = api.handle(event(method, path, &[], &[], None, false)).await;
        assert_eq!(terms.find_in(&text(&res)), None, "{method} {path}");
    }
    for served in [text(&json), page] {
        assert_eq!(terms.find_in(&served), None);
    }
}

/// Every source file the served texts come from, and the documents users read. The policy's own
/// list of terms (and the tests that use them on purpose) are the only exceptions.
#[test]
fn no_text_the_service_serves_or_documents_contains_a_prohibited_term() {
    let terms = ProhibitedTerms::default();
    let mut files = Vec::new();
    for dir in ["shared/src", "functions", "events"] {
        collect(&root().join(dir), &mut files);
    }
    for doc in [
        "README.md",
        "openapi.yaml",
        "dev/local-runner/demo/storm.txt",
    ] {
        files.push(root().join(doc));
    }
    assert!(files.len() > 50, "{} files", files.len());
    let exempt = root().join("shared/src/policy");
    let mut scanned = 0;
    for file in files {
        if file.starts_with(&exempt) || file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Ok(content) = std::fs::read_to_string(&file) else {
            continue;
        };
        // Test modules may use the terms to prove they are refused.
        let served = content.split("#[cfg(test)]").next().unwrap_or("");
        assert_eq!(terms.find_in(served), None, "{}", file.display());
        scanned += 1;
    }
    assert!(scanned > 50);
    // The scan itself can fail: a term is found in the policy's list.
    let list = std::fs::read_to_string(root().join("shared/src/policy/terms.rs")).unwrap();
    assert!(terms.find_in(&list).is_some());
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "rs" || e == "json" || e == "md" || e == "html")
        {
            out.push(path);
        }
    }
}
