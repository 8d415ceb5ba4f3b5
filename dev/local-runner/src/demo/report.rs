//! What the main command found: readable on stdout, JSON in a file, and the checks that decide
//! its exit status.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// One check of the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// One submission and where it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub name: String,
    pub account: String,
    /// The HTTP status of the submission.
    pub http_status: u16,
    pub id: Option<String>,
    /// The storm's final status, or `refused` when the API did not accept it.
    pub status: String,
    pub reason: Option<String>,
    pub parts: usize,
}

/// One part of the storm as the emulator recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    pub part: usize,
    pub media_id: String,
    pub reply_to: Option<String>,
    pub bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountUsage {
    /// The ThreadStorm user who connected it.
    pub user_id: String,
    pub account_id: String,
    pub username: String,
    pub posts_24h: u32,
    pub replies_24h: u32,
    pub requests_1h: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Costs {
    pub published_posts: usize,
    pub aws_requests: u64,
    pub aws_requests_per_post: f64,
    pub aws_by_operation: BTreeMap<String, u64>,
    pub aws_by_function: BTreeMap<String, u64>,
    pub threads_calls: u64,
    pub threads_calls_per_post: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColdStartRow {
    pub function: String,
    pub millis: f64,
    pub rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub seconds: f64,
    pub accounts: Vec<AccountUsage>,
    pub submissions: Vec<Submission>,
    pub storm_chain: Vec<ChainLink>,
    pub costs: Costs,
    pub cold_starts: Vec<ColdStartRow>,
    pub checks: Vec<Check>,
}

impl Report {
    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nThreadStorm main command: report");
        let _ = writeln!(out, "\nsubmissions:");
        for s in &self.submissions {
            let reason = s
                .reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<44} {:>3} {:<10} {:>2} part(s){reason}",
                s.name, s.http_status, s.status, s.parts
            );
        }
        let _ = writeln!(
            out,
            "\nstorm chain ({} parts, as Threads recorded it):",
            self.storm_chain.len()
        );
        for link in &self.storm_chain {
            let _ = writeln!(
                out,
                "  {:>2}. {} {:>3} bytes  reply to {}",
                link.part,
                link.media_id,
                link.bytes,
                link.reply_to.as_deref().unwrap_or("(root)")
            );
        }
        let _ = writeln!(out, "\nquota usage:");
        for a in &self.accounts {
            let _ = writeln!(
                out,
                "  @{:<16} {}  posts {} / replies {} in 24 h, {} API requests in the hour",
                a.username, a.account_id, a.posts_24h, a.replies_24h, a.requests_1h
            );
        }
        let c = &self.costs;
        let _ = writeln!(
            out,
            "\ncost: {} posts published; {:.2} AWS requests and {:.2} Threads calls per post \
             ({} and {} in all)",
            c.published_posts,
            c.aws_requests_per_post,
            c.threads_calls_per_post,
            c.aws_requests,
            c.threads_calls
        );
        for (function, count) in &c.aws_by_function {
            let per = if c.published_posts == 0 {
                0.0
            } else {
                *count as f64 / c.published_posts as f64
            };
            let _ = writeln!(out, "  {function:<14} {count:>5}  {per:>5.2} per post");
        }
        for (operation, count) in &c.aws_by_operation {
            let _ = writeln!(out, "    {operation:<34} {count}");
        }
        let _ = writeln!(
            out,
            "\ncold starts (process start to first request for work):"
        );
        for row in &self.cold_starts {
            let memory = row
                .rss_mb
                .map(|mb| format!(", {mb:.1} MB"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {:<28} {:>7.1} ms{memory}", row.function, row.millis);
        }
        let _ = writeln!(out, "\nchecks:");
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {} — {}", check.name, check.detail);
        }
        let passed = self.checks.iter().filter(|c| c.passed).count();
        let _ = writeln!(
            out,
            "\n{passed}/{} checks passed in {:.1} s",
            self.checks.len(),
            self.seconds
        );
        out
    }
}
