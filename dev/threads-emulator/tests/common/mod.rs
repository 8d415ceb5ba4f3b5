//! A started emulator and a plain HTTP client, so every test talks to it over the wire.
#![allow(dead_code)]

use serde_json::Value;
use threads_emulator::{Emulator, EmulatorConfig};

pub const USER: &str = "17841405793187218";
pub const BIG_USER: &str = "90071992547409931";
pub const REDIRECT: &str = "https://localhost:3000/oauth/callback";

pub struct Harness {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
}

pub struct Answer {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The Graph error code, if this is an error envelope.
    pub fn code(&self) -> Option<i64> {
        self.json()["error"]["code"].as_i64()
    }

    pub fn subcode(&self) -> Option<i64> {
        self.json()["error"]["error_subcode"].as_i64()
    }

    pub fn id(&self) -> String {
        self.json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_string()
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(EmulatorConfig::default()).await
    }

    pub async fn with(config: EmulatorConfig) -> Harness {
        let emu = Emulator::start(config).await.expect("emulator starts");
        let token = emu.issue_long_lived_token(USER);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Harness { emu, http, token }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url())
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.expect("body");
        Answer {
            status,
            body,
            location,
        }
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .expect("request");
        Harness::answer(response).await
    }

    /// A GET carrying the harness token as `access_token`.
    pub async fn get_auth(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        let mut q = query.to_vec();
        q.push(("access_token", self.token.as_str()));
        self.get(path, &q).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request");
        Harness::answer(response).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        Harness::answer(response).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        let response = self
            .http
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        Harness::answer(response).await
    }

    /// `POST /v1.0/me/threads` with the harness token and these parameters.
    pub async fn create(&self, params: &[(&str, &str)]) -> Answer {
        self.create_with(&self.token, params).await
    }

    pub async fn create_with(&self, token: &str, params: &[(&str, &str)]) -> Answer {
        let mut form = params.to_vec();
        form.push(("access_token", token));
        self.post_form("/v1.0/me/threads", &form).await
    }

    pub async fn create_text(&self, text: &str) -> Answer {
        self.create(&[("media_type", "TEXT"), ("text", text)]).await
    }

    pub async fn publish(&self, creation_id: &str) -> Answer {
        self.post_form(
            &format!("/v1.0/{USER}/threads_publish"),
            &[("creation_id", creation_id), ("access_token", &self.token)],
        )
        .await
    }

    pub async fn status(&self, container_id: &str) -> Answer {
        self.get_auth(
            &format!("/v1.0/{container_id}"),
            &[("fields", "id,status,error_message")],
        )
        .await
    }

    /// Create + publish a text post; returns (container id, media id).
    pub async fn post_text(&self, text: &str) -> (String, String) {
        let container = self.create_text(text).await.id();
        let media = self.publish(&container).await.id();
        (container, media)
    }

    pub async fn reply(&self, parent: &str, text: &str) -> (String, String) {
        let container = self
            .create(&[
                ("media_type", "TEXT"),
                ("text", text),
                ("reply_to_id", parent),
            ])
            .await
            .id();
        let media = self.publish(&container).await.id();
        (container, media)
    }
}
