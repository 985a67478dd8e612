//! One logging setup for every Ferry binary: the drivers (through
//! [`run`](crate::run)) and the `ferry` CLI, so the same variables mean the
//! same thing everywhere.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// `FERRY_LOG`: the filter, in tracing's directive syntax (`debug`,
/// `warn,ferry_sdk=debug`). Takes precedence over `RUST_LOG`.
pub const LOG_ENV: &str = "FERRY_LOG";

/// `FERRY_LOG_FORMAT`: `json` for one JSON object per line; anything else,
/// or unset, is human-readable text.
pub const LOG_FORMAT_ENV: &str = "FERRY_LOG_FORMAT";

/// Sends logs to stderr, filtered by [`LOG_ENV`], else `RUST_LOG`, else
/// `default` (drivers use `info`), formatted as [`LOG_FORMAT_ENV`] says. A
/// filter that does not parse is passed over for the next one. Never panics:
/// a second call, or a call after another subscriber was installed, leaves
/// the first in place.
pub fn init(default: &str) {
    install(default, false);
}

/// As [`init`], and for a driver also the OpenTelemetry layer of
/// [`traces`](crate::traces) when its endpoint variable is set. The filter
/// above applies to the log lines only: spans are exported at `info` and
/// above whatever `FERRY_LOG` says, so quieting the logs keeps the traces.
pub(crate) fn init_driver(default: &str) {
    install(default, true);
}

fn install(default: &str, traces: bool) {
    let filter = directives(LOG_ENV).or_else(|| directives("RUST_LOG")).unwrap_or_else(|| EnvFilter::new(default));
    let json = crate::env::text(LOG_FORMAT_ENV).ok().flatten().is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    // The span of each call is for the exporter: in a log line it would only
    // repeat, before every event, what the event's own `op` says.
    let filter = filter.add_directive(crate::traces::RPC_SPAN_DIRECTIVE_OFF.parse().expect("a valid directive"));
    let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
    let (otel, warnings) = if traces { crate::traces::layer() } else { (None, Vec::new()) };
    // `try_init` fails only when a subscriber is already set: keep that one.
    // Not `with(Option)`: a `None` layer beside a filtered one turns every
    // level on for `enabled!`, making disabled events cost their arguments.
    let _ = match otel {
        Some(otel) => registry.with(otel.with_filter(tracing_subscriber::filter::LevelFilter::INFO)).try_init(),
        None => registry.try_init(),
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
}

/// The filter in the variable `name`, if it is set and parses.
fn directives(name: &str) -> Option<EnvFilter> {
    crate::env::text(name).ok().flatten().and_then(|f| EnvFilter::try_new(f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_call_changes_nothing_and_does_not_panic() {
        init("off");
        init("trace");
        // Had the second call replaced the first filter, errors would be on.
        if std::env::var_os(LOG_ENV).is_none() && std::env::var_os("RUST_LOG").is_none() {
            assert!(!tracing::enabled!(tracing::Level::ERROR));
        }
    }
}
