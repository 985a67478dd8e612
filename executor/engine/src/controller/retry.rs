//! `retryStrategy`: a Retry node whose children are the attempts
//! (`name(0)`, `name(1)`, ...), with Argo's limit, policy and backoff.

use super::nodes::Ensured;
use super::outcome::Ended;
use super::{Call, Controller, NodeResult};
use crate::status::NodeKind;
use ferry_workflow::expression;
use ferry_workflow::model::{RetryPolicy, RetryStrategy, Template};
use ferry_workflow::time::parse_duration;
use ferry_workflow::values::Phase;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The waits between attempts: `duration * factor^attempt`, at most `cap`,
/// and no attempt that would start after `maxDuration`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Backoff {
    base: Duration,
    factor: f64,
    cap: Option<Duration>,
    max_duration: Option<Duration>,
}

impl Backoff {
    fn of(strategy: &RetryStrategy) -> Backoff {
        let backoff = strategy.backoff.clone().unwrap_or_default();
        Backoff {
            base: backoff.duration.as_ref().and_then(|d| parse_duration(&d.0)).unwrap_or(Duration::ZERO),
            factor: backoff.factor.as_ref().and_then(|f| f.0.trim().parse::<f64>().ok()).unwrap_or(1.0),
            cap: backoff.cap.as_ref().and_then(|d| parse_duration(&d.0)),
            max_duration: backoff.max_duration.as_ref().and_then(|d| parse_duration(&d.0)),
        }
    }

    /// The wait after attempt `attempt` (0-based) failed, `elapsed` after
    /// the first began; `None` when the next attempt would begin after
    /// `maxDuration`.
    pub(super) fn next_wait(&self, attempt: u32, elapsed: Duration) -> Option<Duration> {
        let mut wait = self.base.mul_f64(self.factor.powi(attempt as i32));
        if let Some(cap) = self.cap {
            wait = wait.min(cap);
        }
        match self.max_duration {
            Some(max) if elapsed + wait > max => None,
            _ => Some(wait),
        }
    }
}

/// Whether `policy` retries an attempt that ended in `phase`.
fn retries(policy: RetryPolicy, phase: Phase) -> bool {
    match policy {
        RetryPolicy::Always => true,
        RetryPolicy::OnFailure => phase == Phase::Failed,
        RetryPolicy::OnError | RetryPolicy::OnTransientError => phase == Phase::Error,
    }
}

/// What the attempt before this one left: Argo's `lastRetry.*`.
struct LastRetry {
    exit_code: Option<i32>,
    status: String,
    duration: String,
    message: String,
}

impl LastRetry {
    /// Before the first attempt: Argo's defaults, so expressions still resolve.
    fn first() -> LastRetry {
        LastRetry { exit_code: Some(0), status: String::new(), duration: "0".into(), message: String::new() }
    }

    fn of(result: &NodeResult) -> LastRetry {
        // Argo's node times are Kubernetes timestamps, whole seconds: the
        // attempt's duration is whole seconds too (`asInt(lastRetry.duration)`
        // works), printed as Go prints a float64 (`3`).
        let seconds = match (result.started, result.finished) {
            (Some(s), Some(f)) => f.div_euclid(1000).saturating_sub(s.div_euclid(1000)).max(0),
            _ => 0,
        };
        LastRetry {
            exit_code: result.outputs.exit_code,
            status: result.phase.to_string(),
            duration: expression::go_string(&expression::Value::Float(seconds as f64)),
            message: result.message.clone(),
        }
    }

    /// As variables; `no_exit` is the exit code's text when there was none.
    fn vars_with(&self, no_exit: &str) -> BTreeMap<String, String> {
        let exit = self.exit_code.map_or(no_exit.to_string(), |c| c.to_string());
        BTreeMap::from([
            ("lastRetry.exitCode".into(), exit),
            ("lastRetry.status".into(), self.status.clone()),
            ("lastRetry.duration".into(), self.duration.clone()),
            ("lastRetry.message".into(), self.message.clone()),
        ])
    }

    /// For the next attempt's template, where Argo says `0` for no exit code.
    fn vars(&self) -> BTreeMap<String, String> {
        self.vars_with("0")
    }
}

/// `retryStrategy.expression` after attempt `attempt` failed: Argo gives it
/// `retries` and `lastRetry.*` only, with `-1` for a missing exit code.
/// An empty expression always retries.
fn keep_retrying(text: &str, attempt: u32, last: &LastRetry) -> Result<bool, expression::ExpressionError> {
    if text.trim().is_empty() {
        return Ok(true);
    }
    let mut vars = last.vars_with("-1");
    vars.insert("retries".into(), attempt.to_string());
    expression::evaluate_bool(text, &vars)
}

impl Controller {
    /// `retryStrategy.expression` with its `{{...}}` tags substituted from
    /// the template's inputs, as Argo substitutes the template before it
    /// evaluates the expression. Unchanged when the inputs cannot be bound:
    /// the attempt then fails, and says why.
    fn retry_expression(&self, call: &Call, template: &Template, text: &str) -> String {
        if !text.contains("{{") {
            return text.to_string();
        }
        let vars = self.template_vars(call, template, template.kind().is_pod());
        let substituted = self.bind(call, template, &vars).ok().and_then(|b| b.vars.substitute(text).ok());
        substituted.unwrap_or_else(|| text.to_string())
    }

    pub(super) async fn run_retry(self: Arc<Self>, call: Call, template: Template) -> NodeResult {
        let id = match self.ensure(&call.name, NodeKind::Retry, &template.name, call.parent) {
            Ensured::Fresh(id) => id,
            Ensured::Done(done) => return done,
        };
        self.set_running(id);
        let strategy = template.retry_strategy.clone().unwrap_or_default();
        let limit = strategy.limit.as_ref().and_then(|l| l.0.trim().parse::<u32>().ok());
        let policy = strategy.retry_policy.unwrap_or_default();
        let backoff = Backoff::of(&strategy);
        let expression = self.retry_expression(&call, &template, &strategy.expression);
        let began = std::time::Instant::now();
        let mut attempt = 0u32;
        let mut last = LastRetry::first();
        loop {
            let mut child = call.clone();
            child.name = format!("{}({attempt})", call.name);
            child.parent = Some(id);
            child.extra.insert("retries".into(), attempt.to_string());
            child.extra.extend(last.vars());
            let result = self.clone().run_body(child, template.clone()).await;
            last = LastRetry::of(&result);
            let ended = Ended { phase: result.phase, message: result.message, outputs: result.outputs };
            if !ended.phase.is_done() || ended.phase.is_ok() {
                return self.finish(id, ended);
            }
            let exhausted = limit.is_some_and(|l| attempt >= l);
            if !retries(policy, ended.phase) || exhausted || call.cancel.is_cancelled() {
                let why = if exhausted { format!("{} (no more retries left)", ended.message) } else { ended.message };
                return self.finish(id, Ended { message: why, ..ended });
            }
            match keep_retrying(&expression, attempt, &last) {
                Ok(true) => {}
                Ok(false) => {
                    let why = format!("{} (retryStrategy.expression evaluated to false)", ended.message);
                    return self.finish(id, Ended { message: why, ..ended });
                }
                Err(e) => return self.finish(id, Ended::error(format!("retryStrategy.expression: {e}"))),
            }
            let Some(wait) = backoff.next_wait(attempt, began.elapsed()) else {
                let why = format!("{} (backoff maxDuration reached)", ended.message);
                return self.finish(id, Ended { message: why, ..ended });
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = call.cancel.cancelled() => {}
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(base: u64, factor: f64, cap: Option<u64>, max: Option<u64>) -> Backoff {
        Backoff {
            base: Duration::from_secs(base),
            factor,
            cap: cap.map(Duration::from_secs),
            max_duration: max.map(Duration::from_secs),
        }
    }

    #[test]
    fn waits_grow_by_the_factor_up_to_the_cap() {
        let b = backoff(1, 2.0, Some(5), None);
        let waits: Vec<u64> = (0..5).map(|a| b.next_wait(a, Duration::ZERO).unwrap().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn no_wait_that_would_pass_max_duration() {
        let b = backoff(3, 1.0, None, Some(10));
        assert_eq!(b.next_wait(0, Duration::from_secs(7)), Some(Duration::from_secs(3)));
        assert_eq!(b.next_wait(0, Duration::from_secs(8)), None);
    }

    #[test]
    fn a_strategy_without_backoff_retries_at_once() {
        let b = Backoff::of(&RetryStrategy::default());
        assert_eq!(b.next_wait(3, Duration::from_secs(3600)), Some(Duration::ZERO));
    }
}
