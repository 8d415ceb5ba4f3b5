//! `local-stack up`: starts moto on loopback (unless `AWS_ENDPOINT_URL` already points at one),
//! creates every table, queue, key and secret of template.yaml in it, prints them with each
//! function's resolved environment, and stops what it started.

use std::process::ExitCode;
use std::time::Instant;

use local_stack::{Moto, Stack, StackOptions, Template, moto::sdk_config_for};
use threadstorm::resources::FUNCTIONS;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("up") => match up().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("local-stack: {err}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "usage: local-stack up\n  brings moto up with every resource of template.yaml, prints them, and stops"
            );
            ExitCode::from(2)
        }
    }
}

async fn up() -> Result<(), String> {
    let begun = Instant::now();
    let template = Template::load_workspace().map_err(|e| e.to_string())?;
    let (endpoint, moto) = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
        _ => {
            let moto = Moto::start(None).map_err(|e| e.to_string())?;
            println!(
                "moto server ready at {} in {} ms",
                moto.endpoint(),
                moto.startup_time().as_millis()
            );
            (moto.endpoint().to_owned(), Some(moto))
        }
    };
    let sdk = sdk_config_for(&endpoint);
    let stack = Stack::create(
        &sdk,
        &template,
        "threadstorm-local",
        StackOptions::local("http://localhost:3000"),
    )
    .await
    .map_err(|e| e.to_string())?;

    println!("\nresources of template.yaml created in {endpoint}:");
    for (logical_id, physical) in &stack.resources {
        println!(
            "  {logical_id:<28} {:<26} {}",
            physical.kind, physical.reference
        );
    }
    println!("\nfunctions and the resources they are given:");
    for function in FUNCTIONS {
        let env = stack
            .function_env(function.logical_id, &endpoint)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = function
            .env_resources()
            .map(|r| {
                format!(
                    "{}={}",
                    r.env_var(),
                    env.get(r.env_var())
                        .map(String::as_str)
                        .unwrap_or("(missing)")
                )
            })
            .collect();
        println!(
            "  {:<16} {}",
            function.name,
            names.join("\n                   ")
        );
    }
    println!(
        "\nstack up in {} ms; stopping what was started",
        begun.elapsed().as_millis()
    );
    drop(moto);
    Ok(())
}
