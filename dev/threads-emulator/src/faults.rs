//! Fault injection: what should go wrong on which kind of call, either as an exact sequence
//! (each step consumed by one call) or as a rate drawn from a seeded generator so a failing run
//! can be replayed.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::GraphError;

/// The kind of call a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Container creation.
    Create,
    /// `threads_publish`.
    Publish,
    /// Container status reads.
    Status,
    /// Code exchange, long-lived exchange, refresh, debug_token.
    Token,
    /// Other reads: profile, threads lists, media, insights, publishing limit.
    Read,
    /// Media deletion.
    Delete,
    /// Any of the above.
    Any,
}

impl Endpoint {
    pub fn parse(name: &str) -> Option<Endpoint> {
        Some(match name {
            "create" | "container" => Endpoint::Create,
            "publish" => Endpoint::Publish,
            "status" => Endpoint::Status,
            "token" | "oauth" => Endpoint::Token,
            "read" => Endpoint::Read,
            "delete" => Endpoint::Delete,
            "any" | "*" => Endpoint::Any,
            _ => return None,
        })
    }
}

/// One thing that goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 400, code 24 / 4279009 "The requested resource does not exist"; nothing happens.
    NotReady,
    /// The call takes effect (a publish IS published) but the answer is HTTP 500, code 10
    /// "Application does not have permission for this action".
    #[serde(alias = "code10")]
    FalseFailure,
    /// HTTP 503, code 2, `is_transient: true`; nothing happens.
    Transient,
    /// HTTP 400, code 4 "Application request limit reached", `is_transient: true`.
    Throttle,
    /// HTTP 400, code 17 "User request limit reached", `is_transient: true`.
    UserThrottle,
    /// HTTP 400, code 190 / 463: the token has expired.
    TokenExpired,
    /// HTTP 400, code 190 / 460: the session was invalidated.
    TokenInvalidated,
    /// HTTP 400, code 1 / 2207052: the media URL could not be fetched.
    MediaFetchFailed,
    /// The answer comes this many milliseconds late; the call is otherwise normal.
    Slow(u64),
    /// The call takes effect but the answer is held for `timeout_hang` (longer than any
    /// client waits).
    Timeout,
    /// On create or status: the container ends in ERROR with this `error_message`
    /// (e.g. `UNKNOWN`, `FAILED_DOWNLOADING_VIDEO`).
    ContainerError(String),
}

impl Fault {
    /// Parses a command-line name, `name` or `name=arg`.
    pub fn parse(spec: &str) -> Option<Fault> {
        let (name, arg) = match spec.split_once('=') {
            Some((name, arg)) => (name, Some(arg)),
            None => (spec, None),
        };
        Some(match name {
            "not_ready" | "4279009" | "code24" => Fault::NotReady,
            "false_failure" | "code10" | "published_code10" => Fault::FalseFailure,
            "transient" | "5xx" | "code2" => Fault::Transient,
            "throttle" | "code4" => Fault::Throttle,
            "user_throttle" | "code17" => Fault::UserThrottle,
            "token_expired" | "code190" | "190" => Fault::TokenExpired,
            "token_invalidated" => Fault::TokenInvalidated,
            "media_fetch_failed" | "2207052" => Fault::MediaFetchFailed,
            "slow" => Fault::Slow(arg.and_then(|a| a.parse().ok()).unwrap_or(2_000)),
            "timeout" => Fault::Timeout,
            "container_error" | "error" => {
                Fault::ContainerError(arg.unwrap_or("UNKNOWN").to_string())
            }
            _ => return None,
        })
    }

    /// The error answered instead of doing the call, for faults that stop it.
    pub(crate) fn refusal(&self, now_s: i64) -> Option<GraphError> {
        Some(match self {
            Fault::NotReady => GraphError::media_not_found(),
            Fault::Transient => GraphError::transient_failure(),
            Fault::Throttle => GraphError::app_throttled(),
            Fault::UserThrottle => GraphError::user_throttled(),
            Fault::TokenExpired => GraphError::token_expired(now_s),
            Fault::TokenInvalidated => GraphError::token_invalidated(),
            Fault::MediaFetchFailed => GraphError::media_fetch_failed("the requested media URL"),
            Fault::FalseFailure | Fault::Slow(_) | Fault::Timeout | Fault::ContainerError(_) => {
                return None;
            }
        })
    }

    /// A delay before the call runs.
    pub(crate) fn delay_before(&self) -> Option<Duration> {
        match self {
            Fault::Slow(ms) => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// How a fault is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// One step per call, in order; `None` lets that call through. Used up, it is gone.
    Sequence(Vec<Option<Fault>>),
    /// Each call fails with `probability` (0.0–1.0), drawn from the seeded generator.
    Rate { fault: Fault, probability: f64 },
}

/// A fault plan for one kind of call.
///
/// JSON: `{"endpoint":"publish","sequence":["not_ready","not_ready",null]}` or
/// `{"endpoint":"any","rate":{"fault":"transient","probability":0.2}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub mode: FaultMode,
}

impl FaultPlan {
    /// The next call of this kind fails.
    pub fn once(endpoint: Endpoint, fault: Fault) -> FaultPlan {
        FaultPlan::times(endpoint, fault, 1)
    }

    /// The next `n` calls of this kind fail.
    pub fn times(endpoint: Endpoint, fault: Fault, n: usize) -> FaultPlan {
        FaultPlan::sequence(endpoint, vec![Some(fault); n])
    }

    /// Exactly these outcomes for the next calls of this kind.
    pub fn sequence(endpoint: Endpoint, steps: Vec<Option<Fault>>) -> FaultPlan {
        FaultPlan {
            endpoint,
            mode: FaultMode::Sequence(steps),
        }
    }

    /// Every call of this kind fails with this probability.
    pub fn rate(endpoint: Endpoint, fault: Fault, probability: f64) -> FaultPlan {
        FaultPlan {
            endpoint,
            mode: FaultMode::Rate {
                fault,
                probability: probability.clamp(0.0, 1.0),
            },
        }
    }

    /// Parses `--fault endpoint:fault[=arg][:count|once]`, e.g. `publish:code10:once`,
    /// `publish:not_ready:2`, `create:container_error=FAILED_DOWNLOADING_VIDEO`.
    pub fn parse_sequence(spec: &str) -> Result<FaultPlan, String> {
        let mut parts = spec.splitn(3, ':');
        let endpoint = parts.next().unwrap_or_default();
        let endpoint =
            Endpoint::parse(endpoint).ok_or_else(|| format!("unknown endpoint in {spec:?}"))?;
        let fault = parts.next().unwrap_or_default();
        let fault = Fault::parse(fault).ok_or_else(|| format!("unknown fault in {spec:?}"))?;
        let count = match parts.next() {
            None | Some("once") => 1,
            Some(n) => n
                .parse()
                .map_err(|_| format!("count must be a number or `once` in {spec:?}"))?,
        };
        Ok(FaultPlan::times(endpoint, fault, count))
    }

    /// Parses `--fault-rate [endpoint:]fault[=arg]:probability`, e.g. `transient:0.2`,
    /// `publish:not_ready:0.5`.
    pub fn parse_rate(spec: &str) -> Result<FaultPlan, String> {
        let (head, probability) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("expected fault:probability in {spec:?}"))?;
        let probability: f64 = probability
            .parse()
            .map_err(|_| format!("probability must be a number in {spec:?}"))?;
        let (endpoint, fault) = match head.split_once(':') {
            Some((endpoint, fault)) => (
                Endpoint::parse(endpoint).ok_or_else(|| format!("unknown endpoint in {spec:?}"))?,
                fault,
            ),
            None => (Endpoint::Any, head),
        };
        let fault = Fault::parse(fault).ok_or_else(|| format!("unknown fault in {spec:?}"))?;
        Ok(FaultPlan::rate(endpoint, fault, probability))
    }
}

/// A fault drawn for one call, and the sequence it came from (none for a rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Drawn {
    pub fault: Fault,
    pub from_sequence: Option<Endpoint>,
}

/// The faults waiting to happen.
#[derive(Debug)]
pub(crate) struct FaultBook {
    sequences: Vec<(Endpoint, VecDeque<Option<Fault>>)>,
    rates: Vec<(Endpoint, Fault, f64)>,
    rng: StdRng,
}

impl FaultBook {
    pub fn new(seed: u64) -> FaultBook {
        FaultBook {
            sequences: Vec::new(),
            rates: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn add(&mut self, plan: FaultPlan) {
        match plan.mode {
            FaultMode::Sequence(steps) if !steps.is_empty() => {
                self.sequences.push((plan.endpoint, steps.into()));
            }
            FaultMode::Sequence(_) => {}
            FaultMode::Rate { fault, probability } => {
                self.rates.push((plan.endpoint, fault, probability));
            }
        }
    }

    pub fn clear(&mut self) {
        self.sequences.clear();
        self.rates.clear();
    }

    pub fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    /// The fault for one call of kind `endpoint`: a sequence for exactly this kind first,
    /// then one for any kind, then the rates.
    pub fn draw(&mut self, endpoint: Endpoint) -> Option<Drawn> {
        for wanted in [endpoint, Endpoint::Any] {
            if let Some(i) = self.sequences.iter().position(|(e, _)| *e == wanted) {
                let step = self.sequences[i].1.pop_front().flatten();
                if self.sequences[i].1.is_empty() {
                    self.sequences.remove(i);
                }
                return step.map(|fault| Drawn {
                    fault,
                    from_sequence: Some(wanted),
                });
            }
        }
        for (e, fault, probability) in &self.rates {
            if (*e == endpoint || *e == Endpoint::Any) && self.rng.random::<f64>() < *probability {
                return Some(Drawn {
                    fault: fault.clone(),
                    from_sequence: None,
                });
            }
        }
        None
    }

    /// Puts a sequence step back in front, for a fault that could not apply to this call
    /// (a false failure needs a call that succeeds).
    pub fn give_back(&mut self, drawn: Drawn) {
        if let Some(endpoint) = drawn.from_sequence {
            self.sequences
                .insert(0, (endpoint, VecDeque::from([Some(drawn.fault)])));
        }
    }

    /// The plans still pending, for `GET /_emulator/faults`.
    pub fn pending(&self) -> Vec<FaultPlan> {
        let sequences = self
            .sequences
            .iter()
            .map(|(e, steps)| FaultPlan::sequence(*e, steps.iter().cloned().collect()));
        let rates = self
            .rates
            .iter()
            .map(|(e, f, p)| FaultPlan::rate(*e, f.clone(), *p));
        sequences.chain(rates).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(book: &mut FaultBook, endpoint: Endpoint) -> Option<Fault> {
        book.draw(endpoint).map(|d| d.fault)
    }

    #[test]
    fn a_sequence_is_consumed_step_by_step_then_gone() {
        let mut book = FaultBook::new(1);
        book.add(FaultPlan::sequence(
            Endpoint::Publish,
            vec![Some(Fault::NotReady), None, Some(Fault::FalseFailure)],
        ));
        assert_eq!(draw(&mut book, Endpoint::Create), None);
        assert_eq!(draw(&mut book, Endpoint::Publish), Some(Fault::NotReady));
        assert_eq!(draw(&mut book, Endpoint::Publish), None);
        assert_eq!(
            draw(&mut book, Endpoint::Publish),
            Some(Fault::FalseFailure)
        );
        assert_eq!(draw(&mut book, Endpoint::Publish), None);
        assert!(book.pending().is_empty());
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let run = |seed| {
            let mut book = FaultBook::new(seed);
            book.add(FaultPlan::rate(Endpoint::Any, Fault::Transient, 0.3));
            (0..200)
                .map(|_| draw(&mut book, Endpoint::Publish).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let hits = run(7).iter().filter(|h| **h).count();
        assert!((30..90).contains(&hits), "{hits}");
    }

    #[test]
    fn command_line_specs_parse() {
        assert_eq!(
            FaultPlan::parse_sequence("publish:code10:once"),
            Ok(FaultPlan::once(Endpoint::Publish, Fault::FalseFailure))
        );
        assert_eq!(
            FaultPlan::parse_sequence("publish:not_ready:2"),
            Ok(FaultPlan::times(Endpoint::Publish, Fault::NotReady, 2))
        );
        assert_eq!(
            FaultPlan::parse_rate("transient:0.2"),
            Ok(FaultPlan::rate(Endpoint::Any, Fault::Transient, 0.2))
        );
        assert_eq!(
            FaultPlan::parse_rate("create:container_error=FAILED_DOWNLOADING_VIDEO:0.5"),
            Ok(FaultPlan::rate(
                Endpoint::Create,
                Fault::ContainerError("FAILED_DOWNLOADING_VIDEO".into()),
                0.5
            ))
        );
        assert!(FaultPlan::parse_sequence("publish:nonsense").is_err());
    }

    #[test]
    fn plans_read_from_json() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"endpoint":"publish","sequence":["not_ready",{"slow":1500},null,{"container_error":"UNKNOWN"}]}"#,
        )
        .unwrap();
        assert_eq!(
            plan,
            FaultPlan::sequence(
                Endpoint::Publish,
                vec![
                    Some(Fault::NotReady),
                    Some(Fault::Slow(1500)),
                    None,
                    Some(Fault::ContainerError("UNKNOWN".into()))
                ]
            )
        );
        let rate: FaultPlan = serde_json::from_str(
            r#"{"endpoint":"any","rate":{"fault":"transient","probability":0.2}}"#,
        )
        .unwrap();
        assert_eq!(rate, FaultPlan::rate(Endpoint::Any, Fault::Transient, 0.2));
    }
}
