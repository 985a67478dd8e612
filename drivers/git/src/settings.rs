//! The `configuration` string: Argo's `git:` artifact fields plus Ferry's
//! write options, parsed and checked once per distinct configuration.

use ferry_sdk::secrets::SecretRef;
use ferry_sdk::{Error, Result};
use serde::Deserialize;
use std::num::NonZeroU32;

/// Argo's `git:` artifact block (without `key`), plus Ferry's additions for Save and Delete.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitConfig {
    /// The repository URL: `https://`, `http://`, `ssh://`, `user@host:path`, `git://` or a local path.
    pub repo: String,
    /// What to check out: a branch, a tag, a full commit SHA or a full ref name. Default: the remote's HEAD.
    #[serde(default)]
    pub revision: Option<String>,
    /// Fetch only this many commits of history (a shallow clone).
    #[serde(default)]
    pub depth: Option<u64>,
    /// Extra refspecs to fetch, such as `refs/pull/*/head:refs/remotes/origin/pr/*`.
    #[serde(default)]
    pub fetch: Vec<String>,
    /// Fetch only `branch`.
    #[serde(default)]
    pub single_branch: bool,
    /// The branch fetched with `singleBranch` (Argo); Ferry also commits Save and Delete to it.
    #[serde(default)]
    pub branch: Option<String>,
    /// Do not clone submodules on Load.
    #[serde(default)]
    pub disable_submodules: bool,
    /// The user name for HTTP(S) basic authentication.
    #[serde(default)]
    pub username_secret: Option<SecretRef>,
    /// The password or token for HTTP(S) basic authentication.
    #[serde(default)]
    pub password_secret: Option<SecretRef>,
    /// A private key for ssh URLs.
    #[serde(default)]
    pub ssh_private_key_secret: Option<SecretRef>,
    /// Accept any ssh host key.
    #[serde(default)]
    pub insecure_ignore_host_key: bool,
    /// Skip TLS certificate verification (git CLI operations only, see the docs).
    #[serde(default, rename = "insecureSkipTLS")]
    pub insecure_skip_tls: bool,
    /// Ferry: author and message of the commits Save and Delete make.
    #[serde(default)]
    pub commit: CommitSettings,
    /// Ferry: let Delete commit the removal of a path (or delete `branch` for the root key).
    #[serde(default)]
    pub allow_delete: bool,
}

/// `commit:` (Ferry): who commits and with what message.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommitSettings {
    /// Author and committer name.
    #[serde(default = "default_author_name")]
    pub author_name: String,
    /// Author and committer email.
    #[serde(default = "default_author_email")]
    pub author_email: String,
    /// The commit message; `{key}` is replaced by the artifact's key.
    #[serde(default = "default_message")]
    pub message: String,
}

fn default_author_name() -> String {
    "Ferry".into()
}
fn default_author_email() -> String {
    "ferry@localhost".into()
}
fn default_message() -> String {
    "ferry: save {key}".into()
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            author_name: default_author_name(),
            author_email: default_author_email(),
            message: default_message(),
        }
    }
}

/// Where Load starts from, decided from `revision`, `singleBranch` and `branch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// The remote's HEAD.
    RemoteHead,
    /// A full commit id, fetched by itself.
    Commit(String),
    /// A branch, tag or full ref name.
    Ref(String),
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid_field(field, why)
}

/// Whether `s` is a full hexadecimal SHA-1 object id.
pub fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_ref_name(field: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.starts_with('/')
        || name.ends_with('/')
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name.chars().any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c));
    if bad { Err(invalid(field, format!("{name:?} is not a valid git ref name"))) } else { Ok(()) }
}

/// A fetch refspec, `[+]<src>[:<dst>]`, whose sides are ref names with at
/// most one `*` each, and either both or neither with one (git's own rules).
fn check_refspec(spec: &str) -> std::result::Result<(), String> {
    let body = spec.strip_prefix('+').unwrap_or(spec);
    let (src, dst) = body.split_once(':').map_or((body, None), |(s, d)| (s, Some(d)));
    let globs = |side: &str| side.matches('*').count();
    let bad = |side: &str| {
        let plain = side.replacen('*', "x", 1);
        side.starts_with('-') || globs(side) > 1 || check_ref_name("fetch", &plain).is_err()
    };
    if src.is_empty() || bad(src) || dst.is_some_and(|d| !d.is_empty() && bad(d)) {
        return Err(format!("{spec:?} is not a valid fetch refspec"));
    }
    if dst.is_some_and(|d| !d.is_empty() && globs(d) != globs(src)) {
        return Err(format!("{spec:?}: both sides of a refspec need a `*`, or neither"));
    }
    Ok(())
}

impl GitConfig {
    /// Parses and checks a configuration string.
    pub fn parse(raw: &str) -> Result<GitConfig> {
        let c: GitConfig = ferry_sdk::config::parse(raw)?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<()> {
        let repo = self.repo.trim();
        if repo.is_empty() {
            return Err(invalid("repo", "must not be empty"));
        }
        if repo.starts_with('-') || repo.chars().any(|c| c.is_ascii_control()) {
            return Err(invalid("repo", "not a repository URL"));
        }
        if self.depth == Some(0) {
            return Err(invalid("depth", "must be at least 1"));
        }
        if self.depth.is_some_and(|d| d > u64::from(u32::MAX)) {
            return Err(invalid("depth", "too large"));
        }
        if let Some(rev) = &self.revision
            && !is_full_sha(rev)
        {
            check_ref_name("revision", rev)?;
        }
        if let Some(branch) = &self.branch {
            check_ref_name("branch", branch.strip_prefix("refs/heads/").unwrap_or(branch))?;
        }
        if self.single_branch && self.branch.is_none() {
            return Err(invalid("singleBranch", "needs `branch`"));
        }
        for (i, spec) in self.fetch.iter().enumerate() {
            if spec.trim().is_empty() {
                return Err(invalid(&format!("fetch[{i}]"), "empty refspec"));
            }
            check_refspec(spec).map_err(|why| invalid(&format!("fetch[{i}]"), why))?;
        }
        if self.password_secret.is_some() && self.username_secret.is_none() {
            return Err(invalid("usernameSecret", "is required with `passwordSecret`"));
        }
        if self.commit.author_name.trim().is_empty() || self.commit.author_name.contains(['<', '>', '\n']) {
            return Err(invalid("commit.authorName", "must be a non-empty name without '<', '>' or newlines"));
        }
        if self.commit.author_email.contains(['<', '>', '\n']) {
            return Err(invalid("commit.authorEmail", "must not contain '<', '>' or newlines"));
        }
        if self.commit.message.trim().is_empty() {
            return Err(invalid("commit.message", "must not be empty"));
        }
        Ok(())
    }

    /// The shallow depth, if any.
    pub fn depth(&self) -> Option<NonZeroU32> {
        self.depth.and_then(|d| u32::try_from(d).ok()).and_then(NonZeroU32::new)
    }

    /// Where reading starts: Argo checks out `revision`, else the single `branch`, else HEAD.
    pub fn start(&self) -> Start {
        match (&self.revision, self.single_branch, &self.branch) {
            (Some(rev), _, _) if is_full_sha(rev) => Start::Commit(rev.to_ascii_lowercase()),
            (Some(rev), _, _) => Start::Ref(rev.clone()),
            (None, true, Some(branch)) => Start::Ref(branch.clone()),
            _ => Start::RemoteHead,
        }
    }

    /// The branch Save and Delete commit to, if the configuration names one.
    /// `revision` counts when it is not a commit id; whether it is really a
    /// branch (and not a tag) is only known once the remote is asked.
    pub fn write_branch(&self) -> Option<String> {
        let name = match (&self.branch, &self.revision) {
            (Some(b), _) => b.clone(),
            (None, Some(rev)) if !is_full_sha(rev) && !rev.starts_with("refs/tags/") => rev.clone(),
            _ => return None,
        };
        match name.strip_prefix("refs/heads/") {
            Some(short) => Some(short.to_string()),
            None if name.starts_with("refs/") => None,
            None => Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_block_parses_with_ferry_additions() {
        let c = GitConfig::parse(
            "repo: https://example.com/r.git\nrevision: v1.0\ndepth: 1\nfetch: ['refs/pull/*/head:refs/remotes/origin/pr/*']\n\
             singleBranch: true\nbranch: main\ndisableSubmodules: true\nusernameSecret: {name: g, key: u}\n\
             passwordSecret: {name: g, key: p}\ninsecureIgnoreHostKey: true\ninsecureSkipTLS: true\n\
             commit: {authorName: Bot, authorEmail: bot@x, message: m}\nallowDelete: true",
        )
        .unwrap();
        assert_eq!(c.start(), Start::Ref("v1.0".into()));
        assert_eq!(c.write_branch().as_deref(), Some("main"));
        assert!(c.insecure_skip_tls && c.allow_delete);
    }

    #[test]
    fn argo_refspecs_are_accepted() {
        for spec in ["refs/pull/*/head:refs/remotes/origin/pr/*", "+refs/heads/*:refs/remotes/origin/*", "main", "v1:"]
        {
            assert!(check_refspec(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        for (raw, field) in [
            ("repo: ''", "repo"),
            ("repo: r\ndepth: 0", "depth"),
            ("repo: r\nrevision: 'a b'", "revision"),
            ("repo: r\nsingleBranch: true", "singleBranch"),
            ("repo: r\nfetch: ['']", "fetch[0]"),
            ("repo: r\nfetch: ['refs/heads/*', 'refs/a/*:refs/b']", "fetch[1]"),
            ("repo: r\nfetch: ['refs/*/x/*']", "fetch[0]"),
            ("repo: r\nfetch: ['+refs/a b']", "fetch[0]"),
            ("repo: r\nrevison: main", "revison"),
            ("repo: r\npasswordSecret: {name: a, key: b}", "usernameSecret"),
        ] {
            let msg = GitConfig::parse(raw).unwrap_err().to_string();
            assert!(msg.contains(field), "{raw}: {msg}");
        }
    }

    #[test]
    fn read_only_unless_a_branch_is_named() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let c = |raw: &str| GitConfig::parse(raw).unwrap();
        assert_eq!(c(&format!("repo: r\nrevision: {sha}")).write_branch(), None);
        assert_eq!(c(&format!("repo: r\nrevision: {sha}")).start(), Start::Commit(sha.into()));
        assert_eq!(c("repo: r\nrevision: refs/tags/v1").write_branch(), None);
        assert_eq!(c("repo: r").write_branch(), None);
        assert_eq!(c("repo: r\nrevision: refs/heads/x").write_branch().as_deref(), Some("x"));
        assert_eq!(c(&format!("repo: r\nrevision: {sha}\nbranch: out")).write_branch().as_deref(), Some("out"));
    }
}
