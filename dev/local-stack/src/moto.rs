//! moto server as a child process on a free loopback port.
//!
//! The server runs from the project's virtualenv (`scripts/ensure-venv` creates it) and exits when
//! our end of its standard input closes — so it never outlives the process that started it, even
//! when that process is killed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto server is not installed at {0}: run ./scripts/test (or ./scripts/ensure-venv), which \
         creates the project's .venv with the pinned moto; or set THREADSTORM_VENV to a virtualenv \
         that has moto[server]"
    )]
    NotInstalled(PathBuf),
    #[error("moto server could not start: {0}")]
    Start(String),
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    started: Duration,
    child: Child,
    // Held open for the server's lifetime: closing it tells the server to stop.
    stdin: Option<ChildStdin>,
}

impl Moto {
    /// The project's virtualenv: `THREADSTORM_VENV`, else `.venv` at the workspace root.
    pub fn venv() -> PathBuf {
        std::env::var_os("THREADSTORM_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv"))
    }

    /// Starts moto on a free loopback port (or `port` when given) and waits until it answers.
    pub fn start(port: Option<u16>) -> Result<Moto, MotoError> {
        let python = Self::venv().join("bin/python");
        if !python.exists() {
            return Err(MotoError::NotInstalled(python));
        }
        let script = workspace_root().join("infra/local/moto_server.py");
        let begun = Instant::now();
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--port", &port.unwrap_or(0).to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| MotoError::Start(format!("{}: {e}", python.display())))?;

        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| MotoError::Start("no stdout pipe".into()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Drain the rest so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                let status = child.wait().ok();
                return Err(MotoError::Start(format!(
                    "it exited before answering ({status:?})"
                )));
            }
            Err(_) => {
                let _ = child.kill();
                return Err(MotoError::Start("no answer within 60 s".into()));
            }
        };
        let port: u16 = line
            .strip_prefix("MOTO_READY ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| MotoError::Start(format!("unexpected first line {line:?}")))?;
        let stdin = child.stdin.take();
        Ok(Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            started: begun.elapsed(),
            child,
            stdin,
        })
    }

    /// One moto server for the whole test process, started on first use.
    ///
    /// Statics are never dropped; the server stops when the process exits and closes its stdin.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| match Moto::start(None) {
            Ok(moto) => moto,
            Err(err) => panic!("{err}"),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How long the server took from spawn to ready.
    pub fn startup_time(&self) -> Duration {
        self.started
    }

    /// The SDK configuration that reaches this server: static test credentials, us-east-1.
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            // Give it a moment to stop on EOF, then make sure.
            std::thread::sleep(Duration::from_millis(50));
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The app name local tooling's AWS requests carry in their user agent.
pub const APP_NAME: &str = "threadstorm-local";

/// SDK configuration for a local endpoint, the same thing `AWS_ENDPOINT_URL` does for a function.
pub fn sdk_config_for(endpoint: &str) -> SdkConfig {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-stack");
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(crate::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            credentials,
        ));
    // Marks local tooling's requests, so moto's request counts tell them from the functions'.
    builder.set_app_name(AppName::new(APP_NAME).ok());
    builder.build()
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}
