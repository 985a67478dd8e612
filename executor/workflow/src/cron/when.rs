//! A cron workflow's `when`: checked before each run, the tick skipped when
//! false. Argo substitutes `{{cronworkflow.*}}` tags, then evaluates the
//! text with govaluate; that is Ferry's `when` language ([`evaluate_when`]).
//! A whole-field expr-lang tag `{{= ... }}` is taken when its expression is
//! in the part of expr-lang that language shares (comparisons, `&&`, `||`,
//! `!`, literals, `cronworkflow.*` names); anything else (`now()`, `nil`,
//! durations) is refused when the cron workflow is checked, not at a tick.

use crate::expr::{self, Resolved, evaluate_when, substitute};
use std::collections::BTreeMap;

/// A checked `when`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// No condition.
    #[default]
    Always,
    /// Govaluate text with `{{cronworkflow.*}}` tags.
    Tags(String),
    /// The expression inside a `{{= ... }}` tag.
    Expression(String),
}

/// The `cronworkflow.*` values a condition reads.
#[derive(Clone, Debug, Default)]
pub struct CronVars {
    /// `cronworkflow.name`.
    pub name: String,
    /// `cronworkflow.namespace`.
    pub namespace: String,
    /// `cronworkflow.labels.X`.
    pub labels: BTreeMap<String, String>,
    /// `cronworkflow.annotations.X`.
    pub annotations: BTreeMap<String, String>,
    /// `cronworkflow.succeeded`: finished successful runs so far.
    pub succeeded: u64,
    /// `cronworkflow.failed`: finished failed runs so far.
    pub failed: u64,
    /// `cronworkflow.lastScheduledTime`: RFC 3339, empty before the first run.
    pub last_scheduled_time: String,
}

/// Where a value stands in the condition: a number as it is, text quoted.
enum Literal {
    Number(u64),
    Text(String),
}

impl CronVars {
    fn get(&self, name: &str) -> Option<Literal> {
        let rest = name.strip_prefix("cronworkflow.")?;
        let text = |s: &String| Some(Literal::Text(s.clone()));
        match rest {
            "name" => text(&self.name),
            "namespace" => text(&self.namespace),
            "succeeded" => Some(Literal::Number(self.succeeded)),
            "failed" => Some(Literal::Number(self.failed)),
            "lastScheduledTime" => text(&self.last_scheduled_time),
            _ => match rest.split_once('.') {
                Some(("labels", k)) => Some(Literal::Text(self.labels.get(k).cloned().unwrap_or_default())),
                Some(("annotations", k)) => Some(Literal::Text(self.annotations.get(k).cloned().unwrap_or_default())),
                _ => None,
            },
        }
    }
}

impl When {
    /// Reads `when` and checks it evaluates (to a boolean) with sample values,
    /// so an unsupported form stops `ferry cron` before it schedules anything.
    pub fn parse(text: &str) -> Result<When, expr::Error> {
        let trimmed = text.trim();
        let when = if trimmed.is_empty() {
            When::Always
        } else if let Some(inner) = trimmed.strip_prefix("{{=").and_then(|t| t.strip_suffix("}}")) {
            if inner.contains("{{") || inner.contains("}}") {
                let what = "a `when` with text around its `{{= ... }}` tag".into();
                return Err(expr::Error::Unsupported { what, text: text.into() });
            }
            When::Expression(inner.trim().to_string())
        } else {
            When::Tags(trimmed.to_string())
        };
        let sample = CronVars { name: "cron".into(), namespace: "default".into(), ..CronVars::default() };
        when.holds(&sample)?;
        Ok(when)
    }

    /// Whether the condition holds with these values.
    pub fn holds(&self, vars: &CronVars) -> Result<bool, expr::Error> {
        match self {
            When::Always => Ok(true),
            When::Tags(text) => {
                let substituted = substitute(text, &mut |name| match vars.get(name) {
                    Some(Literal::Number(n)) => Resolved::Value(n.to_string()),
                    Some(Literal::Text(t)) => Resolved::Value(t),
                    None => Resolved::Unknown,
                })?;
                evaluate_when(&substituted)
            }
            When::Expression(e) => evaluate_when(&with_values(e, vars)?),
        }
    }
}

/// `e` with each `cronworkflow.*` name replaced by its value as a literal.
fn with_values(e: &str, vars: &CronVars) -> Result<String, expr::Error> {
    let mut out = String::with_capacity(e.len());
    let mut rest = e;
    while let Some(at) = rest.find("cronworkflow.") {
        let before_is_word =
            rest[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        let len = rest[at..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(rest.len() - at);
        let name = &rest[at..at + len];
        out.push_str(&rest[..at]);
        match vars.get(name) {
            Some(_) if before_is_word => out.push_str(name),
            Some(Literal::Number(n)) => out.push_str(&n.to_string()),
            Some(Literal::Text(t)) => out.push_str(&format!("'{}'", t.replace('\\', "\\\\").replace('\'', "\\'"))),
            None => return Err(expr::Error::UnknownVariable { name: name.into(), text: e.into() }),
        }
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> CronVars {
        CronVars { name: "nightly".into(), failed: 2, succeeded: 5, ..Default::default() }
    }

    #[test]
    fn plain_booleans_and_tags_evaluate_as_argo_does() {
        assert!(When::parse("").unwrap().holds(&vars()).unwrap());
        assert!(When::parse("true").unwrap().holds(&vars()).unwrap());
        assert!(!When::parse("false").unwrap().holds(&vars()).unwrap());
        let w = When::parse("{{cronworkflow.failed}} < 3 && {{cronworkflow.name}} == nightly").unwrap();
        assert!(w.holds(&vars()).unwrap());
        assert!(!w.holds(&CronVars { failed: 3, ..vars() }).unwrap());
    }

    #[test]
    fn expression_tags_in_the_shared_subset_evaluate() {
        let w = When::parse("{{= cronworkflow.succeeded >= 5 || cronworkflow.name == 'other' }}").unwrap();
        assert_eq!(w, When::Expression("cronworkflow.succeeded >= 5 || cronworkflow.name == 'other'".into()));
        assert!(w.holds(&vars()).unwrap());
        assert!(!w.holds(&CronVars { succeeded: 1, ..vars() }).unwrap());
        let first = When::parse("{{= cronworkflow.lastScheduledTime == '' }}").unwrap();
        assert!(first.holds(&vars()).unwrap());
    }

    #[test]
    fn what_cannot_be_evaluated_is_refused_up_front() {
        let now = When::parse(
            "{{= cronworkflow.lastScheduledTime == nil || (now() - cronworkflow.lastScheduledTime).Seconds() > 360 }}",
        );
        assert!(now.is_err(), "{now:?}");
        assert!(matches!(When::parse("{{cronworkflow.nope}} == 1"), Err(expr::Error::UnknownVariable { .. })));
        assert!(When::parse("{{= cronworkflow.nope > 1 }}").is_err());
        assert!(When::parse("x {{= true }}").is_err());
        assert!(When::parse("{{= 1 }} && {{= 2 }}").is_err());
        assert!(When::parse("5").is_err(), "not a boolean");
    }
}
