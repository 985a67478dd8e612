//! The driver profile: how to launch the driver, how to configure it, and what it claims.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A driver profile, read from YAML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    /// The driver's name: `plugin.name` in every request and the socket directory name.
    pub driver: DriverInfo,
    /// How to start the driver (managed mode). Without it, pass `--socket`.
    #[serde(default)]
    pub launch: Option<Launch>,
    /// What every request carries.
    pub plugin: PluginSettings,
    /// Values that must never appear in driver output or error messages.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Driver-specific configurations that must fail cleanly.
    #[serde(default)]
    pub bad_configurations: Vec<BadConfiguration>,
    /// What the driver claims to support; each claim is probed.
    #[serde(default)]
    pub claims: Claims,
    /// Limits the measured cases are held to.
    #[serde(default)]
    pub limits: Limits,
    /// Out-of-band helpers for fault cases.
    #[serde(default)]
    pub hooks: Hooks,
    /// Cases known to fail, with the reason; reported as TODO, refused in certify mode.
    #[serde(default)]
    pub expected_failures: Vec<ExpectedFailure>,
}

/// Name and version of the driver under test.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverInfo {
    /// Plugin name.
    pub name: String,
    /// Free-form version, for reports.
    #[serde(default)]
    pub version: Option<String>,
}

/// How the runner starts the driver: `command… <socket path>`, as Argo does,
/// or the container image's entrypoint with the socket path, as Argo runs a plugin image.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Program and arguments; the socket path is appended last.
    #[serde(default)]
    pub command: Vec<String>,
    /// A local container image to run instead of `command` (`--image` sets it):
    /// its own user, the run's work directory as the shared volume, host networking.
    #[serde(default)]
    pub image: Option<String>,
    /// Extra environment. `${env:NAME}` is replaced from the runner's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The `plugin` block every request carries.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginSettings {
    /// `PluginArtifact.configuration`, verbatim. `{sharedDir}` is replaced by the run's work directory.
    pub configuration: String,
    /// A second, isolated location (another bucket or root) for isolation cases.
    #[serde(default)]
    pub alt_configuration: Option<String>,
    /// Every key lives below this prefix (plus a random run id).
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

fn default_prefix() -> String {
    "ferry-conformance/".into()
}

/// A configuration that must be refused.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BadConfiguration {
    /// A name for reports.
    pub name: String,
    /// The configuration string.
    pub configuration: String,
    /// A regex the error message must match (the driver author's own definition of "clear").
    #[serde(default)]
    pub expect_error_matching: Option<String>,
}

/// What the driver says it can do.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Claims {
    /// `archive: none` directories: every object under `key/`.
    #[serde(default = "yes")]
    pub directories: bool,
    /// Save and Delete are refused.
    #[serde(default)]
    pub read_only: bool,
    /// Objects outlive a restart of the driver process.
    #[serde(default = "yes")]
    pub persistent: bool,
    /// Whether GetCapabilities should advertise SaveStream; checked by AD-CAP-005.
    #[serde(default)]
    pub save_stream: Option<bool>,
    /// The empty key names an artifact (git: the whole repository) instead of
    /// being refused; skips AD-KEY-011.
    #[serde(default)]
    pub root_key: bool,
    /// Delete removes objects. `false` (Argo's HTTP artifacts) skips the
    /// cases that delete and checks instead that Delete is refused and
    /// leaves the object.
    #[serde(default = "yes")]
    pub delete: bool,
    /// ListObjects names what was saved. `false`: the cases that list are
    /// skipped (a driver that cannot list answers an empty list).
    #[serde(default = "yes")]
    pub list: bool,
}

/// Commands (argv arrays) the runner runs to break or restore the backend.
/// They get `FERRY_CONFORMANCE_KEY` (the object being read) and
/// `FERRY_CONFORMANCE_SHARED_DIR` (the run's work directory) in their environment.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hooks {
    /// Makes the backend fail for an object being streamed.
    #[serde(default)]
    pub backend_down: Option<Vec<String>>,
    /// Undoes `backendDown`.
    #[serde(default)]
    pub backend_up: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            directories: true,
            read_only: false,
            persistent: true,
            save_stream: None,
            root_key: false,
            delete: true,
            list: true,
        }
    }
}

/// Limits for the measured cases.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Socket appearance to READY, in ms.
    #[serde(default = "startup_ms")]
    pub startup_ms: u64,
    /// SIGTERM to exit, in seconds.
    #[serde(default = "sigterm_grace")]
    pub sigterm_grace_seconds: u64,
    /// Any single call, in seconds.
    #[serde(default = "rpc_deadline")]
    pub rpc_deadline_seconds: u64,
    /// Peak RSS of the driver process during the large transfer, in MiB.
    #[serde(default = "max_rss", rename = "maxRssMiB")]
    pub max_rss_mib: u64,
    /// Size of the large-file cases, in bytes.
    #[serde(default = "large_file")]
    pub large_file_bytes: u64,
}

fn startup_ms() -> u64 {
    2000
}
fn sigterm_grace() -> u64 {
    10
}
fn rpc_deadline() -> u64 {
    60
}
fn max_rss() -> u64 {
    256
}
fn large_file() -> u64 {
    64 << 20
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            startup_ms: startup_ms(),
            sigterm_grace_seconds: sigterm_grace(),
            rpc_deadline_seconds: rpc_deadline(),
            max_rss_mib: max_rss(),
            large_file_bytes: large_file(),
        }
    }
}

/// A case expected to fail.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// The case ID.
    pub id: String,
    /// Why.
    pub reason: String,
}

impl Profile {
    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> anyhow::Result<Profile> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading profile {}: {e}", path.display()))?;
        let profile: Profile =
            ferry_sdk::config::parse(&text).map_err(|e| anyhow::anyhow!("profile {}: {e}", path.display()))?;
        if let Some(launch) = &profile.launch
            && launch.command.is_empty() == launch.image.is_none()
        {
            anyhow::bail!("profile {}: launch needs exactly one of `command` (not empty) and `image`", path.display());
        }
        for bad in &profile.bad_configurations {
            if let Some(pattern) = &bad.expect_error_matching {
                regex::Regex::new(pattern).map_err(|e| {
                    anyhow::anyhow!(
                        "profile {}: badConfigurations {:?}: expectErrorMatching is not a regex: {e}",
                        path.display(),
                        bad.name
                    )
                })?;
            }
        }
        Ok(profile)
    }

    /// Environment for the launched driver, with `${env:NAME}` resolved.
    pub fn launch_env(&self) -> anyhow::Result<Vec<(String, String)>> {
        let Some(launch) = &self.launch else { return Ok(vec![]) };
        launch.env.iter().map(|(k, v)| Ok((k.clone(), expand_env(v)?))).collect()
    }
}

/// Replaces `${env:NAME}` with the runner's environment variable NAME.
pub fn expand_env(value: &str) -> anyhow::Result<String> {
    let re = regex::Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid regex");
    let mut missing = None;
    let out = re.replace_all(value, |c: &regex::Captures| {
        std::env::var(&c[1]).unwrap_or_else(|_| {
            missing = Some(c[1].to_string());
            String::new()
        })
    });
    match missing {
        Some(name) => anyhow::bail!("environment variable {name} (used as ${{env:{name}}}) is not set"),
        None => Ok(out.into_owned()),
    }
}
