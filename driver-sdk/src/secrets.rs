//! Secrets: references in a configuration, resolved through a chain of sources.
//!
//! Secrets are never written inline. A configuration names them the way Argo's
//! built-in artifacts do (`accessKeySecret: {name: my-s3, key: accessKey}`,
//! a [`SecretRef`]) and [`Secrets::resolve`] looks the reference up, in order:
//!
//! 1. the environment variable `FERRY_SECRET_<NAME>_<KEY>` (upper-cased,
//!    every character outside `A-Z0-9` turned into `_`);
//! 2. the file `<dir>/<name>/<key>`, which is how Kubernetes mounts a secret
//!    volume; `<dir>` is `$FERRY_SECRETS_DIR`, by default [`DEFAULT_SECRETS_DIR`];
//! 3. inside a pod, and only in a build with the cargo feature
//!    `kubernetes-secrets`, the Kubernetes API: the secret is read from the
//!    pod's namespace with the pod's service account.
//!
//! Every step is async: the API lookup runs on the caller's runtime, so a
//! slow or unreachable API server holds the one connect that waits on it,
//! never a runtime worker.

#[cfg(feature = "kubernetes-secrets")]
mod kubernetes;

use crate::error::{Error, Result};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where secret volumes are looked for when `FERRY_SECRETS_DIR` is unset.
pub const DEFAULT_SECRETS_DIR: &str = "/var/run/secrets/ferry";

/// Environment variable that overrides [`DEFAULT_SECRETS_DIR`].
pub const SECRETS_DIR_ENV: &str = "FERRY_SECRETS_DIR";

/// A reference to one key of a Kubernetes secret, in Argo's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The secret's name.
    pub name: String,
    /// The key inside the secret.
    pub key: String,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secret {:?} key {:?}", self.name, self.key)
    }
}

/// A resolved secret value. Its `Debug` and `Display` never show the value,
/// so it cannot leak through a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value with exactly one trailing newline (`\n` or `\r\n`) removed:
    /// `echo value > file` and `kubectl create secret --from-file` keep the
    /// shell's newline, which is never part of a key or token and, sent in
    /// an HTTP header, made storage clients panic.
    pub(crate) fn new(mut value: String) -> Secret {
        if value.ends_with("\r\n") {
            value.truncate(value.len() - 2);
        } else if value.ends_with('\n') {
            value.pop();
        }
        Secret(value)
    }

    /// The value, for handing to a storage client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Resolves [`SecretRef`]s: from the environment, a mounted secrets
/// directory and, in a pod, the Kubernetes API (see the module docs).
#[derive(Clone, Debug)]
pub struct Secrets {
    dir: PathBuf,
    use_env: bool,
}

impl Secrets {
    /// Environment variables first, then `$FERRY_SECRETS_DIR` (or the default
    /// directory), then, in a pod, the Kubernetes API.
    pub fn from_env() -> Self {
        let dir = crate::env::path(SECRETS_DIR_ENV).unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR));
        Secrets { dir, use_env: true }
    }

    /// Only files under `dir`; neither the environment nor the API is consulted.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Secrets { dir: dir.into(), use_env: false }
    }

    /// The directory secret volumes are read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The environment variable consulted for `secret`.
    pub fn env_var_name(secret: &SecretRef) -> String {
        let norm = |s: &str| -> String {
            s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
        };
        format!("FERRY_SECRET_{}_{}", norm(&secret.name), norm(&secret.key))
    }

    /// Reads the value of `secret`. Fails with
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the
    /// secret (never its value) when it cannot be found.
    pub async fn resolve(&self, secret: &SecretRef) -> Result<Secret> {
        for part in [&secret.name, &secret.key] {
            if part.is_empty() || part.contains('/') || part == "." || part == ".." {
                return Err(Error::invalid_config(format!(
                    "{secret}: secret names and keys must be non-empty and contain no '/'"
                )));
            }
        }
        let var = Self::env_var_name(secret);
        if self.use_env
            && let Some(value) = crate::env::text(&var)?
        {
            return Ok(Secret::new(value));
        }
        let file = self.dir.join(&secret.name).join(&secret.key);
        match tokio::fs::read(&file).await {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Secret::new)
                .map_err(|_| Error::invalid_config(format!("{secret}: {} is not UTF-8", file.display()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && self.use_env => {
                Self::api_lookup(secret, &var, &file).await
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::invalid_config(format!("{secret} not found: {} does not exist", file.display())))
            }
            Err(err) => Err(Error::from(err).context(format!("{secret}: reading {}", file.display()))),
        }
    }

    /// The last source, for a secret neither in the environment (`var`) nor
    /// mounted (`file`): in a pod, the Kubernetes API.
    #[cfg(feature = "kubernetes-secrets")]
    async fn api_lookup(secret: &SecretRef, var: &str, file: &Path) -> Result<Secret> {
        if !kubernetes::in_cluster() {
            return Err(Error::invalid_config(format!(
                "{secret} not found: environment variable {var} is unset and {} does not exist",
                file.display()
            )));
        }
        kubernetes::get(&secret.name, &secret.key).await.map(Secret::new).map_err(|err| api_failure(secret, var, err))
    }

    /// Without the `kubernetes-secrets` feature there is no last source:
    /// the error says so and how to supply the secret instead.
    #[cfg(not(feature = "kubernetes-secrets"))]
    async fn api_lookup(secret: &SecretRef, var: &str, file: &Path) -> Result<Secret> {
        Err(Error::invalid_config(format!(
            "{secret} not found: environment variable {var} is unset and {} does not exist, and this build of the \
             driver has no Kubernetes secret lookup (ferry-sdk feature `kubernetes-secrets`): set {var} in the \
             driver's environment or mount the secret at {}",
            file.display(),
            file.display()
        )))
    }
}

/// A failure of the API lookup of `secret`, naming it. A refusal (RBAC, a
/// bad token) also names the environment variable `var`: the other sources
/// need no API access.
#[cfg(feature = "kubernetes-secrets")]
fn api_failure(secret: &SecretRef, var: &str, err: Error) -> Error {
    if err.kind() == crate::ErrorKind::PermissionDenied {
        Error::new(
            err.kind(),
            format!("{secret}: {}; or put the secret in the driver's environment as {var}", err.message()),
        )
    } else {
        err.context(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_resolve_from_mounted_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("my-s3")).unwrap();
        std::fs::write(dir.path().join("my-s3/secretKey"), "hunter2").unwrap();
        let secrets = Secrets::from_dir(dir.path());
        let r = SecretRef { name: "my-s3".into(), key: "secretKey".into() };
        let value = secrets.resolve(&r).await.unwrap();
        assert_eq!(value.expose(), "hunter2");
        assert!(!format!("{value:?} {value}").contains("hunter2"));

        let missing = SecretRef { name: "my-s3".into(), key: "nope".into() };
        let msg = secrets.resolve(&missing).await.unwrap_err().to_string();
        assert!(msg.contains("\"nope\"") && msg.contains("not found"), "{msg}");

        let escape = SecretRef { name: "..".into(), key: "passwd".into() };
        assert!(secrets.resolve(&escape).await.is_err());
    }

    #[tokio::test]
    async fn one_trailing_newline_is_trimmed_from_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("s")).unwrap();
        let secrets = Secrets::from_dir(dir.path());
        for (stored, want) in [("v\n", "v"), ("v\r\n", "v"), ("v\n\n", "v\n"), ("v", "v"), ("\n", ""), (" v ", " v ")] {
            std::fs::write(dir.path().join("s/k"), stored).unwrap();
            let r = SecretRef { name: "s".into(), key: "k".into() };
            assert_eq!(secrets.resolve(&r).await.unwrap().expose(), want, "{stored:?}");
        }
    }

    #[test]
    fn env_var_names_are_normalised() {
        let r = SecretRef { name: "my-s3.creds".into(), key: "accessKey".into() };
        assert_eq!(Secrets::env_var_name(&r), "FERRY_SECRET_MY_S3_CREDS_ACCESSKEY");
    }

    #[cfg(feature = "kubernetes-secrets")]
    #[test]
    fn a_refused_api_lookup_names_the_variable_that_would_supply_the_secret() {
        let r = SecretRef { name: "s3".into(), key: "secretKey".into() };
        let var = Secrets::env_var_name(&r);
        let denied = Error::new(crate::ErrorKind::PermissionDenied, "reading secret \"s3\" was denied");
        let text = api_failure(&r, &var, denied).to_string();
        assert!(text.starts_with("secret \"s3\" key \"secretKey\": reading"), "{text}");
        assert!(text.contains("FERRY_SECRET_S3_SECRETKEY"), "{text}");
        let slow = api_failure(&r, &var, Error::new(crate::ErrorKind::Transient, "no answer"));
        assert_eq!(slow.kind(), crate::ErrorKind::Transient);
        assert_eq!(slow.to_string(), "secret \"s3\" key \"secretKey\": no answer");
    }

    #[cfg(not(feature = "kubernetes-secrets"))]
    #[tokio::test]
    async fn without_the_api_a_missing_secret_says_how_to_supply_it() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets { dir: dir.path().to_path_buf(), use_env: true };
        let r = SecretRef { name: "absent-in-this-test".into(), key: "token".into() };
        let err = secrets.resolve(&r).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig);
        let msg = err.to_string();
        assert!(msg.contains("no Kubernetes secret lookup"), "{msg}");
        assert!(msg.contains("FERRY_SECRET_ABSENT_IN_THIS_TEST_TOKEN"), "{msg}");
        assert!(msg.contains(&dir.path().join("absent-in-this-test/token").display().to_string()), "{msg}");
    }
}
