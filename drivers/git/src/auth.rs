//! Credentials, handed to the git CLI through the child's own environment:
//! never in a URL, an argument list or a log line.

use crate::settings::GitConfig;
use ferry_sdk::secrets::{Secret, Secrets};
use ferry_sdk::{Error, Result};
use std::io::Write;

/// Child environment variables the inline credential helper reads.
const USER_VAR: &str = "FERRY_GIT_USERNAME";
const PASSWORD_VAR: &str = "FERRY_GIT_PASSWORD";

/// Answers only `get`, so git never asks it to store or erase anything.
const CREDENTIAL_HELPER: &str = "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' \"$FERRY_GIT_USERNAME\" \"$FERRY_GIT_PASSWORD\"; }; f";

/// Resolved credentials of one configuration.
pub struct Auth {
    basic: Option<(Secret, Option<Secret>)>,
    /// The private key, written to a 0600 file because ssh only reads keys from files.
    ssh_key: Option<tempfile::TempPath>,
    insecure_ignore_host_key: bool,
    insecure_skip_tls: bool,
}

impl Auth {
    /// Resolves the configuration's secrets.
    pub async fn resolve(c: &GitConfig) -> Result<Auth> {
        let secrets = Secrets::from_env();
        let basic = match (&c.username_secret, &c.password_secret) {
            (Some(u), Some(p)) => Some((secrets.resolve(u).await?, Some(secrets.resolve(p).await?))),
            (Some(u), None) => Some((secrets.resolve(u).await?, None)),
            (None, Some(p)) => return Err(invalid_password_only(p)),
            (None, None) => None,
        };
        let ssh_key = match &c.ssh_private_key_secret {
            Some(r) => Some(write_key(&secrets.resolve(r).await?)?),
            None => None,
        };
        Ok(Auth {
            basic,
            ssh_key,
            insecure_ignore_host_key: c.insecure_ignore_host_key,
            insecure_skip_tls: c.insecure_skip_tls,
        })
    }

    /// The ssh command line, when ssh needs options: a key or relaxed host checking.
    fn ssh_command(&self) -> Option<String> {
        if self.ssh_key.is_none() && !self.insecure_ignore_host_key {
            return None;
        }
        let mut cmd = String::from("ssh -o BatchMode=yes -o LogLevel=ERROR");
        if let Some(key) = &self.ssh_key {
            cmd.push_str(&format!(" -o IdentitiesOnly=yes -i '{}'", key.display()));
        }
        if self.insecure_ignore_host_key {
            cmd.push_str(" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null");
        }
        Some(cmd)
    }

    /// Applies the credentials to a git CLI child: `-c` options and environment.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        cmd.env("GIT_TERMINAL_PROMPT", "0").env("GIT_ASKPASS", "true").env("SSH_ASKPASS", "true");
        // Empty first: it resets any helper from the system or global config.
        cmd.args(["-c", "credential.helper="]);
        if let Some((user, password)) = &self.basic {
            cmd.args(["-c", &format!("credential.helper={CREDENTIAL_HELPER}")]);
            cmd.env(USER_VAR, user.expose())
                .env(PASSWORD_VAR, password.as_ref().map(Secret::expose).unwrap_or_default());
        }
        match self.ssh_command() {
            Some(ssh) => cmd.env("GIT_SSH_COMMAND", ssh),
            None => cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        };
        if self.insecure_skip_tls {
            cmd.args(["-c", "http.sslVerify=false"]);
        }
    }
}

fn write_key(key: &Secret) -> Result<tempfile::TempPath> {
    let mut file = tempfile::Builder::new()
        .prefix("ferry-git-key-")
        .tempfile()
        .map_err(|e| Error::from(e).context("writing the ssh private key to a temporary file"))?;
    let mut text = key.expose().to_string();
    // OpenSSH refuses a key file without a final newline ("invalid format").
    if !text.ends_with('\n') {
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .map_err(|e| Error::from(e).context("writing the ssh private key to a temporary file"))?;
    // tempfile creates the file with mode 0600 already, which ssh requires.
    Ok(file.into_temp_path())
}

fn invalid_password_only(p: &ferry_sdk::secrets::SecretRef) -> Error {
    Error::invalid_field("usernameSecret", format!("is required with `passwordSecret` ({p})"))
}
