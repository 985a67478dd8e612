//! Turns gix errors and git CLI output into the SDK's error kinds, with any
//! credentials a user put in a URL masked.

use ferry_sdk::{Error, ErrorKind};

/// The kind a failure message stands for; `Other` when nothing matches.
///
/// gix and git report most remote failures as text (HTTP statuses, ssh
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

/// The whole cause chain of `err` in one line: gix's top-level messages are
/// generic ("fetch failed") and the useful part sits in the sources.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Maps a gix error, using its classification first and its text second.
pub fn gix_error(what: &str, err: gix::Error) -> Error {
    use gix::error::Class;
    let text = redact(&chain(&err));
    let by_class = match err.dominant_class() {
        Some(Class::Unauthenticated | Class::PermissionDenied) => Some(ErrorKind::PermissionDenied),
        Some(Class::NotFound) => Some(ErrorKind::NotFound),
        Some(Class::Retryable) => Some(ErrorKind::Transient),
        _ => None,
    };
    let kind = by_class.unwrap_or_else(|| io_kind(&err).unwrap_or_else(|| kind_of_text(&text)));
    Error::new(kind, format!("{what}: {text}"))
}

fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            return match io.kind() {
                Io::ConnectionRefused | Io::ConnectionReset | Io::TimedOut | Io::ConnectionAborted => {
                    Some(ErrorKind::Transient)
                }
                _ => None,
            };
        }
        cur = e.source();
    }
    None
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
