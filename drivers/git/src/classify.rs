//! Turns git CLI output into the SDK's error kinds, with any
//! credentials a user put in a URL masked.

use ferry_sdk::ErrorKind;

/// The kind a failure message stands for; `Other` when nothing matches.
///
/// git reports most remote failures as text (HTTP statuses, ssh
/// messages, server "ERR" lines), so matching the text is the only option.
pub fn kind_of_text(text: &str) -> ErrorKind {
    let t = text.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied (publickey",
        "permission denied, please try again",
        "http 401",
        "http 403",
        "status code 401",
        "status code 403",
        "401 unauthorized",
        "403 forbidden",
        "unauthorized",
        "invalid credentials",
        "no credentials",
        "credentials",
    ]) {
        return ErrorKind::PermissionDenied;
    }
    if any(&[
        "connection refused",
        "connection reset",
        "connection timed out",
        "timed out",
        "could not resolve host",
        "failed to connect",
        "unable to connect",
        "unable to access",
        "network is unreachable",
        "broken pipe",
        "the remote end hung up unexpectedly",
        "http 50",
        "status code 50",
        "dns error",
        "error trying to connect",
    ]) {
        return ErrorKind::Transient;
    }
    if any(&[
        "not found",
        "couldn't find remote ref",
        "could not find remote ref",
        "does not appear to be a git repository",
        "no such file or directory",
        "did not match any",
        "unknown revision",
        "not a valid object name",
        "invalid reference",
        "no matching remote",
        "not our ref",
        "does not exist",
        "http 404",
        "status code 404",
        "no such repository",
        "repository not exported",
    ]) {
        return ErrorKind::NotFound;
    }
    ErrorKind::Other
}

/// Masks the password of any `scheme://user:password@` in `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"').unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split(':').next().unwrap_or("");
                if userinfo.contains(':') {
                    out.push_str(&format!("{user}:***@{}", &authority[at + 1..]));
                } else {
                    out.push_str(authority);
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact("fatal: unable to access 'https://bob:hunter2@h/r.git/': 401"),
            "fatal: unable to access 'https://bob:***@h/r.git/': 401"
        );
        assert_eq!(redact("ssh://git@h:22/r and git://h/r"), "ssh://git@h:22/r and git://h/r");
    }

    #[test]
    fn texts_map_to_kinds() {
        assert_eq!(kind_of_text("fatal: Authentication failed for 'http://h/'"), ErrorKind::PermissionDenied);
        assert_eq!(kind_of_text("git@h: Permission denied (publickey)."), ErrorKind::PermissionDenied);
        assert_eq!(kind_of_text("Connection refused (os error 111)"), ErrorKind::Transient);
        assert_eq!(kind_of_text("fatal: couldn't find remote ref refs/heads/x"), ErrorKind::NotFound);
    }
}
