//! The API Gateway front, over real HTTP, against fixture functions built like the real ones:
//! requests become REST proxy events, proxy responses become HTTP responses, and what API Gateway
//! refuses is refused the same way.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use local_runner::{OutcomeKind, Runner, Trigger};
use serde_json::{Value, json};

fn api_template() -> String {
    let echo = common::function(
        "EchoFunction",
        "fixture-http",
        r#"      Events:
        Items:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /items/{code}
            Method: GET
        Echo:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /echo/{proxy+}
            Method: ANY"#,
    );
    let raw = common::function(
        "RawFunction",
        "fixture-events",
        r#"      Events:
        Raw:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /raw/{proxy+}
            Method: ANY"#,
    );
    common::template(
        10,
        &format!(
            r#"  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref StageName
{echo}{raw}"#
        ),
    )
}

async fn runner() -> (Runner, common::TemplateFile, String) {
    let (options, file) = common::options(&api_template());
    let runner = common::start(options).await;
    let url = match runner.api_url() {
        Some(url) => url,
        None => panic!("the fixture template has Api events"),
    };
    (runner, file, url)
}

async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn a_request_becomes_the_rest_event_lambda_http_reads() {
    let (runner, _file, url) = runner().await;
    assert!(url.ends_with("/live"), "{url}");
    let response = reqwest::Client::new()
        .get(format!("{url}/echo/a/b%20c?x=1&x=2&y=hello+world&z=%2B1"))
        .header("X-Multi", "one")
        .header("X-Multi", "two")
        .header("User-Agent", "runner-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let seen = json_of(response).await;
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["stage"], "live");
    assert_eq!(seen["resource_path"], "/echo/{proxy+}");
    assert_eq!(seen["raw_path"], "/echo/a/b c");
    assert_eq!(seen["uri_path"], "/live/echo/a/b%20c");
    assert_eq!(seen["path_parameters"], json!({"proxy": ["a/b c"]}));
    assert_eq!(seen["query"]["x"], json!(["1", "2"]));
    assert_eq!(seen["query"]["y"], json!(["hello world"]));
    assert_eq!(seen["query"]["z"], json!(["+1"]));
    // The event carries both values (see the raw event test), but lambda_http overlays the
    // single-value `headers` on `multiValueHeaders`, so a function sees the last one only — as it
    // would behind API Gateway.
    assert_eq!(seen["headers"]["x-multi"], json!(["two"]));
    assert_eq!(seen["headers"]["user-agent"], json!(["runner-test"]));
    assert_eq!(seen["headers"]["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(seen["source_ip"], "127.0.0.1");
    let expected_name = format!("{}-EchoFunction", runner.stack().name);
    assert_eq!(seen["function_name"], expected_name.as_str());

    let item = reqwest::get(format!("{url}/items/abc%2Fdef"))
        .await
        .unwrap();
    assert_eq!(item.status(), 200);
    let seen = json_of(item).await;
    assert_eq!(seen["path_parameters"], json!({"code": ["abc/def"]}));
    assert_eq!(seen["resource_path"], "/items/{code}");
    runner.shutdown().await;
}

#[tokio::test]
async fn the_raw_event_has_the_rest_proxy_shape() {
    let (runner, _file, url) = runner().await;
    let client = reqwest::Client::new();
    let event = json_of(
        client
            .post(format!("{url}/raw/things?tag=a&tag=b"))
            .header("content-type", "application/json")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .body(r#"{"hello":"world"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(event["resource"], "/raw/{proxy+}");
    assert_eq!(event["path"], "/raw/things");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["pathParameters"], json!({"proxy": "things"}));
    assert_eq!(event["queryStringParameters"], json!({"tag": "b"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"tag": ["a", "b"]})
    );
    assert_eq!(event["headers"]["content-type"], "application/json");
    assert_eq!(
        event["multiValueHeaders"]["content-type"],
        json!(["application/json"])
    );
    assert_eq!(event["headers"]["x-multi"], "two");
    assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
    assert_eq!(event["stageVariables"], Value::Null);
    assert_eq!(event["body"], r#"{"hello":"world"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["stage"], "live");
    assert_eq!(context["path"], "/live/raw/things");
    assert_eq!(context["resourcePath"], "/raw/{proxy+}");
    assert_eq!(context["httpMethod"], "POST");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");
    assert!(
        context["requestId"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );

    // A binary body arrives base64-encoded, byte for byte.
    let bytes: Vec<u8> = (0u8..=255).collect();
    let event = json_of(
        client
            .put(format!("{url}/raw/upload"))
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], BASE64.encode(&bytes));
    assert_eq!(event["queryStringParameters"], Value::Null);
    assert_eq!(
        event["body"].as_str().map(|b| BASE64.decode(b).unwrap()),
        Some(bytes)
    );
    runner.shutdown().await;
}

#[tokio::test]
async fn binary_bodies_and_repeated_headers_map_back() {
    let (runner, _file, url) = runner().await;
    let client = reqwest::Client::new();

    // lambda_http decodes the base64 body for the function; the fixture re-encodes what it got.
    let bytes = vec![0u8, 1, 2, 250, 255, 128];
    let seen = json_of(
        client
            .post(format!("{url}/echo/upload"))
            .header("content-type", "image/png")
            .body(bytes.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen["body_base64"], BASE64.encode(&bytes));

    let binary = client
        .get(format!("{url}/echo/x/binary"))
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status(), 200);
    assert_eq!(binary.headers()["content-type"], "image/png");
    assert_eq!(
        binary.bytes().await.unwrap().to_vec(),
        vec![0x89, b'P', b'N', b'G', 0, 255]
    );

    let cookies = client
        .get(format!("{url}/echo/x/cookies"))
        .send()
        .await
        .unwrap();
    assert_eq!(cookies.status(), 201);
    let set: Vec<&str> = cookies
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(set, vec!["a=1", "b=2"]);
    assert_eq!(cookies.text().await.unwrap(), "two cookies");
    runner.shutdown().await;
}

#[tokio::test]
async fn what_api_gateway_refuses_is_refused_alike() {
    let (runner, _file, url) = runner().await;
    let client = reqwest::Client::new();
    let base = url.trim_end_matches("/live").to_owned();

    for (method, target) in [
        (reqwest::Method::GET, format!("{url}/nothing/here")),
        // The route exists for GET only.
        (reqwest::Method::DELETE, format!("{url}/items/abc")),
        // {proxy+} needs at least one segment.
        (reqwest::Method::GET, format!("{url}/echo")),
    ] {
        let response = client.request(method, &target).send().await.unwrap();
        assert_eq!(response.status(), 403, "{target}");
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            json_of(response).await,
            json!({"message": "Missing Authentication Token"})
        );
    }

    // Outside the stage, API Gateway knows nothing.
    let outside = client.get(format!("{base}/echo/x")).send().await.unwrap();
    assert_eq!(outside.status(), 403);
    assert_eq!(json_of(outside).await, json!({"message": "Forbidden"}));

    // A function error, and a proxy response without a statusCode: 502.
    for target in [format!("{url}/echo/x/fail"), format!("{url}/raw/malformed")] {
        let response = client.get(&target).send().await.unwrap();
        assert_eq!(response.status(), 502, "{target}");
        assert_eq!(
            json_of(response).await,
            json!({"message": "Internal server error"})
        );
    }

    let log = runner.invocations();
    let failed = log
        .iter()
        .find(|r| matches!(&r.trigger, Trigger::Api { path, .. } if path.ends_with("/fail")))
        .unwrap();
    assert_eq!(failed.kind, OutcomeKind::FunctionError);
    assert!(matches!(failed.trigger, Trigger::Api { status: 502, .. }));
    // Refused requests never reach a function.
    assert!(
        log.iter()
            .all(|r| !matches!(&r.trigger, Trigger::Api { path, .. } if path.contains("nothing")))
    );
    runner.shutdown().await;
}

/// A client that promises a body and never sends it, or never finishes its headers, is answered
/// or dropped after the read timeout instead of holding its connection for ever.
#[tokio::test]
async fn a_body_or_headers_that_never_arrive_time_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (runner, _file, url) = runner().await;
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stream
        .write_all(
            b"POST /live/echo/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly ten b",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        local_runner::apigw::CLIENT_READ_TIMEOUT * 2,
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection was not held open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= local_runner::apigw::CLIENT_READ_TIMEOUT);

    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stream
        .write_all(b"GET /live/echo/x HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        local_runner::apigw::CLIENT_READ_TIMEOUT * 2,
        stream.read_to_end(&mut rest),
    )
    .await;
    assert!(
        closed.is_ok(),
        "unfinished headers: the connection is closed"
    );
    runner.shutdown().await;
}
