//! Operator commands for ThreadStorm's secrets: the two-phase rotation of the Threads app secret
//! (stage, verify, promote — or cancel) and emergency rotation of a generated secret. Uses the
//! usual AWS credentials and region of the shell; values are read from stdin, never arguments.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use threadstorm::audit::{Audit, DynamoAuditSink};
use threadstorm::aws::AwsClients;
use threadstorm::config::Secret;
use threadstorm::rotation::store::SecretStore;
use threadstorm::rotation::{RotationError, emergency, manual};
use threadstorm::threads::{
    DEFAULT_AUTHORIZE_URL, DEFAULT_GRAPH_BASE, ThreadsClient, ThreadsConfig,
};

#[derive(Parser)]
#[command(
    about = "Rotate ThreadStorm's secrets by hand or at once (see README, \"Rotating secrets\")"
)]
struct Args {
    /// The stack's AuditTable (output of `sam list resources`, or TABLE_AUDIT).
    #[arg(long, env = "TABLE_AUDIT", global = true)]
    audit_table: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Which versions are current, previous and pending (no values).
    Status {
        #[arg(long)]
        secret_id: String,
    },
    /// Phase 1: store the new Threads app secret (read from stdin) as AWSPENDING.
    Stage {
        #[arg(long)]
        secret_id: String,
        /// Who is doing this, for the audit record.
        #[arg(long)]
        who: String,
    },
    /// Phase 2a: check the pending app secret against Threads.
    Verify {
        #[arg(long)]
        secret_id: String,
        /// The Threads App ID (the stack's ThreadsAppId parameter).
        #[arg(long)]
        app_id: String,
        #[arg(long, default_value = DEFAULT_GRAPH_BASE)]
        graph_url: String,
    },
    /// Phase 2b: verify the pending app secret, then make it current (the old one stays
    /// accepted as previous).
    Promote {
        #[arg(long)]
        secret_id: String,
        #[arg(long)]
        app_id: String,
        #[arg(long, default_value = DEFAULT_GRAPH_BASE)]
        graph_url: String,
        #[arg(long)]
        who: String,
    },
    /// Drop a staged app secret instead of promoting it.
    Cancel {
        #[arg(long)]
        secret_id: String,
        #[arg(long)]
        who: String,
    },
    /// Emergency: rotate a generated secret now (its rotation function does the four steps).
    RotateNow {
        #[arg(long)]
        secret_id: String,
        #[arg(long)]
        who: String,
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<String, String> {
    let aws = AwsClients::from_env().await;
    let store = SecretStore::new(aws.secrets.clone());
    let audit = || -> Result<Audit, String> {
        let table = args
            .audit_table
            .clone()
            .ok_or("--audit-table (or TABLE_AUDIT) is required: every change is audited")?;
        Ok(Audit::new(
            Arc::new(DynamoAuditSink::new(aws.dynamodb.clone(), table)),
            true,
        ))
    };
    let threads = |graph_url: &str| -> Result<ThreadsClient, String> {
        let config = ThreadsConfig::new(graph_url, DEFAULT_AUTHORIZE_URL)
            .map_err(|e| format!("--graph-url: {e}"))?;
        ThreadsClient::new(config).map_err(|e| e.to_string())
    };
    let text = |e: RotationError| e.to_string();
    match &args.command {
        Command::Status { secret_id } => {
            let status = manual::status(&store, secret_id).await.map_err(text)?;
            Ok(format!(
                "{}: current {}, previous {}, pending {}",
                status.kind,
                status.current.as_deref().unwrap_or("-"),
                status.previous.as_deref().unwrap_or("-"),
                status.pending.as_deref().unwrap_or("-"),
            ))
        }
        Command::Stage { secret_id, who } => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| format!("reading the new value from stdin: {e}"))?;
            let value = Secret::new(input.trim_end_matches(['\r', '\n']));
            let version = manual::stage(&store, &audit()?, secret_id, &value, who)
                .await
                .map_err(text)?;
            Ok(format!(
                "staged as version {version}; now verify and promote"
            ))
        }
        Command::Verify {
            secret_id,
            app_id,
            graph_url,
        } => {
            let version = manual::verify(&store, &threads(graph_url)?, app_id, secret_id)
                .await
                .map_err(text)?;
            Ok(format!("version {version} is accepted by Threads"))
        }
        Command::Promote {
            secret_id,
            app_id,
            graph_url,
            who,
        } => {
            let audit = audit()?;
            manual::verify(&store, &threads(graph_url)?, app_id, secret_id)
                .await
                .map_err(text)?;
            let version = manual::promote(&store, &audit, secret_id, who)
                .await
                .map_err(text)?;
            Ok(format!(
                "version {version} is current; the old value is still accepted as previous"
            ))
        }
        Command::Cancel { secret_id, who } => {
            match manual::cancel(&store, &audit()?, secret_id, who)
                .await
                .map_err(text)?
            {
                Some(version) => Ok(format!("version {version} is no longer pending")),
                None => Ok("nothing was pending".to_owned()),
            }
        }
        Command::RotateNow {
            secret_id,
            who,
            reason,
        } => {
            let started = emergency::rotate_now(&store, &audit()?, secret_id, who, reason)
                .await
                .map_err(text)?;
            Ok(format!(
                "rotation started: version {}; `status` shows it current once finishSecret ran",
                started.version
            ))
        }
    }
}
