//! `threads-emulator`: the emulator as a process, for local stacks and manual runs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use threads_emulator::{Emulator, EmulatorConfig, FaultPlan};

#[derive(Parser)]
#[command(about = "A local emulator of the Threads Graph API")]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8787, env = "THREADS_EMULATOR_PORT")]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// JSON configuration file; every field optional (see the README).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Time from container creation to FINISHED, in milliseconds.
    #[arg(long)]
    readiness_delay_ms: Option<u64>,
    /// A fault sequence: `endpoint:fault[=arg][:count|once]`, e.g. `publish:code10:once`.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// A fault rate: `[endpoint:]fault[=arg]:probability`, e.g. `transient:0.2`.
    #[arg(long = "fault-rate")]
    fault_rates: Vec<String>,
    /// Seed for fault rates.
    #[arg(long)]
    seed: Option<u64>,
}

fn config(args: &Args) -> Result<(EmulatorConfig, Vec<FaultPlan>), String> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))?
        }
        None => EmulatorConfig::default(),
    };
    if let Some(ms) = args.readiness_delay_ms {
        config.readiness_delay = Duration::from_millis(ms);
    }
    if let Some(seed) = args.seed {
        config.fault_seed = seed;
    }
    let mut plans = Vec::new();
    for spec in &args.faults {
        plans.push(FaultPlan::parse_sequence(spec)?);
    }
    for spec in &args.fault_rates {
        plans.push(FaultPlan::parse_rate(spec)?);
    }
    Ok((config, plans))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let (config, plans) = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("threads-emulator: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let emulator = match Emulator::start_on(config, SocketAddr::new(args.host, args.port)).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("threads-emulator: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for plan in plans {
        emulator.inject(plan);
    }
    // The base URL alone on stdout, so a script can read it; logs go to stderr.
    println!("{}", emulator.base_url());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    emulator.run_until_ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
