//! The process environment. Every `FERRY_*` variable the SDK and the drivers
//! read goes through one of the typed readers here, so a variable has one
//! parse rule wherever it is read, and a bad value is an
//! [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) error naming
//! the variable. A setting set to the empty string counts as unset (`FOO=`
//! in a pod spec means no override).
//!
//! | reader | accepts | example |
//! | --- | --- | --- |
//! | [`positive`] | a whole number above zero | `64` |
//! | [`duration`] | a whole number above zero of seconds, or with a unit `s`, `m` or `h` | `300`, `300s`, `5m` |
//! | [`duration_or_zero`] | the same, and zero (no wait at all) | `0`, `8` |
//! | [`size`] | bytes, or a number with a unit `Ki`, `Mi` or `Gi` (a trailing `B` is allowed) | `8Mi`, `8MiB`, `1048576` |
//! | [`flag`] | `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, in any case | `false` |
//! | [`text`], [`path`] | any value | |
//!
//! Every `FERRY_*` variable of every Ferry binary, with its rule, default
//! and reader, is in one table: `docs/configuration.md`
//! (`scripts/env-table.py` fails when a name in the sources is missing there).

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// `FERRY_RETRY_TIMEOUT`: the wall time over which a transient failure is
/// retried (one HTTP request by the client, one upload by resuming it).
pub const RETRY_TIMEOUT_ENV: &str = "FERRY_RETRY_TIMEOUT";

/// Default of [`RETRY_TIMEOUT_ENV`]: longer than a MinIO restart or a load
/// balancer fail-over, short enough that a dead endpoint fails the step soon.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// The value of `name` as it is set, also when empty; `None` when unset. A
/// value that is not Unicode is an error naming the variable, never showing
/// the value (it may be a secret).
pub fn text(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid_config(format!("{name} is not valid Unicode"))),
    }
}

/// The path in `name`, any bytes; `None` when unset or empty.
pub fn path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// A whole number above zero; `None` when unset.
pub fn positive(name: &str) -> Result<Option<u64>> {
    setting(name)?.map(|raw| positive_of(name, &raw)).transpose()
}

/// A duration above zero: whole seconds, or a whole number with the unit
/// `s`, `m` or `h`; `default` when unset.
pub fn duration(name: &str, default: Duration) -> Result<Duration> {
    Ok(setting(name)?.map(|raw| duration_of(name, &raw, false)).transpose()?.unwrap_or(default))
}

/// As [`duration`], but zero is allowed: for waits where none at all is a
/// meaningful choice (a shutdown grace period).
pub fn duration_or_zero(name: &str, default: Duration) -> Result<Duration> {
    Ok(setting(name)?.map(|raw| duration_of(name, &raw, true)).transpose()?.unwrap_or(default))
}

/// A size: bytes, or a number with the unit `Ki`, `Mi` or `Gi` (`8Mi`,
/// `8MiB`); `None` when unset.
pub fn size(name: &str) -> Result<Option<u64>> {
    setting(name)?.map(|raw| size_of(name, &raw)).transpose()
}

/// On or off: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, in any
/// case; `default` when unset.
pub fn flag(name: &str, default: bool) -> Result<bool> {
    Ok(setting(name)?.map(|raw| flag_of(name, &raw)).transpose()?.unwrap_or(default))
}

/// The value of a setting; unset when empty or blank, as `FOO=` in a pod
/// spec means "no override".
fn setting(name: &str) -> Result<Option<String>> {
    Ok(text(name)?.filter(|v| !v.trim().is_empty()))
}

fn positive_of(name: &str, raw: &str) -> Result<u64> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid_config(format!("{name}={raw:?} is not a positive whole number")))
}

fn duration_of(name: &str, raw: &str, zero_allowed: bool) -> Result<Duration> {
    let v = raw.trim();
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let seconds = digits.parse::<u64>().ok().and_then(|n| match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    });
    match seconds {
        Some(0) if !zero_allowed => {
            Err(Error::invalid_config(format!("{name}={raw:?}: zero is not allowed here; give a duration above zero")))
        }
        Some(s) => Ok(Duration::from_secs(s)),
        None => Err(Error::invalid_config(format!(
            "{name}={raw:?} is not a duration: whole seconds, or with a unit (30s, 5m, 1h)"
        ))),
    }
}

fn size_of(name: &str, raw: &str) -> Result<u64> {
    let v = raw.trim();
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let shift = match unit.trim_end_matches('B') {
        "" => 0,
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        _ => return Err(Error::invalid_config(format!("{name}: {raw:?}: use bytes or a Ki, Mi or Gi suffix"))),
    };
    let n: u64 = digits.parse().map_err(|_| Error::invalid_config(format!("{name}: {raw:?} is not a size")))?;
    n.checked_mul(1 << shift).ok_or_else(|| Error::invalid_config(format!("{name}: {raw:?} is too large")))
}

fn flag_of(name: &str, raw: &str) -> Result<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid_config(format!("{name}={raw:?} is neither on (1, true) nor off (0, false)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_with_or_without_a_unit() {
        for (raw, secs) in [("300", 300), ("300s", 300), (" 5m ", 300), ("1h", 3600)] {
            assert_eq!(duration_of("FERRY_X", raw, false).unwrap(), Duration::from_secs(secs), "{raw}");
        }
        assert_eq!(duration_of("FERRY_X", "0", true).unwrap(), Duration::ZERO);
        let zero = duration_of("FERRY_READ_TIMEOUT", "0", false).unwrap_err();
        assert!(zero.to_string().starts_with("FERRY_READ_TIMEOUT=\"0\""), "{zero}");
        for bad in ["s", "1.5", "-1", "5 m", "5min", "1d", "99999999999999999999h"] {
            let err = duration_of("FERRY_READ_TIMEOUT", bad, true).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig);
            assert!(err.to_string().contains("FERRY_READ_TIMEOUT"), "{err}");
        }
    }

    #[test]
    fn positive_numbers_refuse_zero_and_words() {
        assert_eq!(positive_of("FERRY_X", " 64 ").unwrap(), 64);
        for bad in ["0", "-3", "many", "1e3"] {
            let err = positive_of("FERRY_MAX_STREAMS", bad).unwrap_err();
            assert_eq!(err.to_string(), format!("FERRY_MAX_STREAMS={bad:?} is not a positive whole number"));
        }
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(size_of("FERRY_X", "1048576").unwrap(), 1 << 20);
        assert_eq!(size_of("FERRY_X", "8Mi").unwrap(), 8 << 20);
        assert_eq!(size_of("FERRY_X", "8MiB").unwrap(), 8 << 20);
        assert_eq!(size_of("FERRY_X", "1Gi").unwrap(), 1 << 30);
        for bad in ["8MB", "8 Mi", "lots", "99999999999999999999", "17179869184Gi"] {
            assert!(size_of("FERRY_PART_SIZE", bad).unwrap_err().to_string().contains("FERRY_PART_SIZE"), "{bad}");
        }
    }

    #[test]
    fn flags_are_on_or_off_and_nothing_else() {
        for on in ["1", "true", "TRUE", "yes", "on"] {
            assert!(flag_of("FERRY_X", on).unwrap(), "{on}");
        }
        for off in ["0", "false", "False", "no", "off"] {
            assert!(!flag_of("FERRY_X", off).unwrap(), "{off}");
        }
        assert!(flag_of("FERRY_GCS_STATUS_QUERY", "maybe").unwrap_err().to_string().contains("FERRY_GCS_STATUS_QUERY"));
    }

    /// Only a variable no test sets is read: the process environment cannot
    /// be changed safely while other tests run.
    #[test]
    fn unset_variables_give_the_default() {
        let name = "FERRY_TEST_NEVER_SET_BY_ANYONE";
        assert_eq!(text(name).unwrap(), None);
        assert_eq!(path(name), None);
        assert_eq!(positive(name).unwrap(), None);
        assert_eq!(size(name).unwrap(), None);
        assert_eq!(duration(name, Duration::from_secs(7)).unwrap(), Duration::from_secs(7));
        assert_eq!(duration_or_zero(name, Duration::ZERO).unwrap(), Duration::ZERO);
        assert!(flag(name, true).unwrap());
    }
}
