//! Where each function's binary comes from: built by cargo from the workspace (the same binaries
//! that are deployed), or taken from a directory or an explicit path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Command;

/// How the runner gets the function binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binaries {
    /// `cargo build --profile <profile> --workspace --bins`, then run
    /// `target/<profile dir>/<binary>`. Each function's package is named after its binary.
    Build { profile: String },
    /// Binaries already built, in this directory.
    Dir(PathBuf),
}

impl Default for Binaries {
    fn default() -> Self {
        Binaries::Build {
            profile: "dev".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("running cargo: {0}")]
    Cargo(std::io::Error),
    #[error("`cargo {args}` failed ({status}); its output is above")]
    Failed { args: String, status: String },
    #[error("cargo metadata: {0}")]
    Metadata(String),
    #[error("no binary {binary} at {path}")]
    Missing { binary: String, path: PathBuf },
}

/// The directory cargo writes `profile`'s binaries to.
pub fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        other => other,
    }
}

fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(local_stack::moto::workspace_root());
    // Under `cargo run` this process has the variables cargo sets for the package it runs. Some
    // build scripts watch them (ring reruns when CARGO_MANIFEST_DIR changes), so passing them on
    // would make the inner build and the next outer one rebuild each other every time.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "OUT_DIR"
            )
        {
            command.env_remove(name);
        }
    }
    command
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR` and `.cargo/config`).
async fn target_dir() -> Result<PathBuf, BuildError> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .await
        .map_err(BuildError::Cargo)?;
    if !output.status.success() {
        return Err(BuildError::Metadata(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| BuildError::Metadata(e.to_string()))?;
    metadata
        .get("target_directory")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| BuildError::Metadata("no target_directory".into()))
}

/// Builds `packages` (when `binaries` says to) and returns where each binary is, with how long
/// the build took.
pub async fn resolve(
    binaries: &Binaries,
    needed: &BTreeSet<String>,
    explicit: &BTreeMap<String, PathBuf>,
) -> Result<(BTreeMap<String, PathBuf>, Option<Duration>), BuildError> {
    let mut paths: BTreeMap<String, PathBuf> = explicit
        .iter()
        .filter(|(name, _)| needed.contains(*name))
        .map(|(n, p)| (n.clone(), p.clone()))
        .collect();
    let to_find: Vec<&String> = needed.iter().filter(|n| !paths.contains_key(*n)).collect();
    let mut took = None;
    if !to_find.is_empty() {
        let dir = match binaries {
            Binaries::Dir(dir) => dir.clone(),
            Binaries::Build { profile } => {
                let begun = Instant::now();
                // The whole workspace's binaries, so features unify exactly as in the test
                // command's build and its artifacts are reused rather than rebuilt.
                let args: Vec<String> = [
                    "build",
                    "--locked",
                    "--profile",
                    profile,
                    "--workspace",
                    "--bins",
                ]
                .map(str::to_owned)
                .to_vec();
                eprintln!("local-runner: cargo {}", args.join(" "));
                let status = cargo()
                    .args(&args)
                    .status()
                    .await
                    .map_err(BuildError::Cargo)?;
                if !status.success() {
                    return Err(BuildError::Failed {
                        args: args.join(" "),
                        status: status.to_string(),
                    });
                }
                took = Some(begun.elapsed());
                target_dir().await?.join(profile_dir(profile))
            }
        };
        for name in to_find {
            paths.insert(name.clone(), dir.join(name));
        }
    }
    for (name, path) in &paths {
        if !Path::new(path).is_file() {
            return Err(BuildError::Missing {
                binary: name.clone(),
                path: path.clone(),
            });
        }
    }
    Ok((paths, took))
}
