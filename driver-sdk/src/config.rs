//! Typed configuration.
//!
//! Argo passes each artifact's `configuration` as an opaque string. Ferry reads
//! it as YAML (so JSON works too) into the driver's own struct. Mark that struct
//! `#[serde(deny_unknown_fields)]`: a typo then fails with the field's path
//! instead of being silently ignored. Secrets are never written inline: a
//! configuration names them as a [`SecretRef`](crate::secrets::SecretRef),
//! resolved by [`crate::secrets`].

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;

/// The longest `configuration` string accepted.
pub const MAX_CONFIGURATION_BYTES: usize = 64 << 10;

/// Parses a `configuration` string (YAML or JSON) into `T`.
///
/// An empty string is read as an empty mapping, so a driver whose fields all
/// have defaults needs no configuration. Errors are
/// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) and name the
/// field path and the line, never the value.
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct Cfg { bucket: String, #[serde(default)] retries: u32 }
///
/// let cfg: Cfg = ferry_sdk::config::parse("bucket: b\nretries: 3").unwrap();
/// assert_eq!(cfg.retries, 3);
/// let err = ferry_sdk::config::parse::<Cfg>("bucket: b\nretires: 3").unwrap_err();
/// assert!(err.to_string().contains("retires"));
/// ```
pub fn parse<T: DeserializeOwned>(raw: &str) -> Result<T> {
    // The YAML parser needs about 1 s per 256 KiB of adversarial input (for
    // example a run of `[`); real configurations are a few hundred bytes.
    if raw.len() > MAX_CONFIGURATION_BYTES {
        return Err(Error::invalid_config(format!(
            "invalid configuration: {} bytes, more than the {} KiB limit",
            raw.len(),
            MAX_CONFIGURATION_BYTES >> 10
        )));
    }
    let text = if raw.trim().is_empty() { "{}" } else { raw };
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let location =
            inner.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default();
        // serde_yaml_ng appends its own "at line ..." to some messages; keep one.
        let detail = inner.to_string();
        let detail = detail.split(" at line ").next().unwrap_or(&detail).to_string();
        let field = if path == "." { String::new() } else { format!(" field `{path}`:") };
        Error::invalid_config(format!("invalid configuration{location}:{field} {detail}"))
    })
}

/// The longest value accepted where it travels in an HTTP header (region,
/// keys, tokens): far above any real one (STS tokens are about 2 KiB), far
/// below what servers refuse, so an oversized value is a clear error here.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 << 10;

/// Checks a configuration value that ends up in an HTTP header (or a URL),
/// where a control character, a non-ASCII character or a huge value would
/// otherwise fail deep inside a storage client (object_store panics on an
/// invalid header value). Fails with
/// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming
/// `what` (a field or a secret), never the value, which may be a secret.
pub fn check_header_value(what: &str, value: &str) -> Result<()> {
    let why = if value.len() > MAX_HEADER_VALUE_BYTES {
        format!("is {} bytes long (at most {MAX_HEADER_VALUE_BYTES})", value.len())
    } else if let Some(c) = value.chars().find(|c| c.is_control()) {
        format!("contains the control character U+{:04X}", c as u32)
    } else if !value.is_ascii() {
        "contains a non-ASCII character".to_string()
    } else {
        return Ok(());
    };
    Err(Error::invalid_config(format!("invalid configuration: {what} {why}; it is sent in an HTTP header")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretRef;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct S3Like {
        bucket: String,
        #[serde(default)]
        encryption_options: Option<Enc>,
        #[serde(default)]
        access_key_secret: Option<SecretRef>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Enc {
        #[serde(default)]
        enable_encryption: bool,
    }

    #[test]
    fn yaml_and_json_both_parse() {
        let y: S3Like = parse("bucket: b\naccessKeySecret: {name: s, key: k}").unwrap();
        assert_eq!(y.bucket, "b");
        assert_eq!(y.access_key_secret.unwrap().key, "k");
        let j: S3Like = parse(r#"{"bucket": "b", "encryptionOptions": {"enableEncryption": true}}"#).unwrap();
        assert!(j.encryption_options.unwrap().enable_encryption);
    }

    #[test]
    fn unknown_nested_field_names_its_path_and_line() {
        let err = parse::<S3Like>("bucket: b\nencryptionOptions:\n  enableEncrypton: true\n").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig);
        let msg = err.to_string();
        assert!(msg.contains("encryptionOptions"), "{msg}");
        assert!(msg.contains("enableEncrypton"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn wrong_type_and_missing_field_are_clear() {
        let msg = parse::<S3Like>("bucket: [1, 2]").unwrap_err().to_string();
        assert!(msg.contains("bucket"), "{msg}");
        let msg = parse::<S3Like>("").unwrap_err().to_string();
        assert!(msg.contains("missing field `bucket`"), "{msg}");
        let msg = parse::<S3Like>("bucket: [unclosed").unwrap_err().to_string();
        assert!(msg.contains("invalid configuration"), "{msg}");
    }

    #[test]
    fn oversized_configuration_is_refused_fast() {
        let huge = "[".repeat(MAX_CONFIGURATION_BYTES + 1);
        let started = std::time::Instant::now();
        let msg = parse::<S3Like>(&huge).unwrap_err().to_string();
        assert!(msg.contains("KiB limit"), "{msg}");
        assert!(started.elapsed() < std::time::Duration::from_millis(50), "took {:?}", started.elapsed());
    }

    #[test]
    fn header_values_are_checked_without_echoing_them() {
        check_header_value("field `region`", "eu-west-1").unwrap();
        for bad in ["a\u{7}b", "nul\0", "new\nline", "é", &"x".repeat(MAX_HEADER_VALUE_BYTES + 1)] {
            let err = check_header_value("secret s/k", bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig);
            assert!(err.message().contains("secret s/k"), "{err}");
            assert!(!err.message().contains(bad), "the value is echoed: {err}");
        }
    }
}
