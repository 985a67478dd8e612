//! Cloning with gix: which refs to fetch, how deep, and with which credentials.
//! Blocking; callers run it inside `spawn_blocking`.

use crate::auth::Auth;
use crate::classify::gix_error;
use crate::settings::{GitConfig, Start};
use ferry_sdk::{Error, Result};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// gix checks this between steps; Ferry never interrupts a clone, it drops the task.
static NEVER: AtomicBool = AtomicBool::new(false);

/// Clones `c.repo` into `dest` (a `.git`, history as configured; the caller
/// checks the worktree out): Argo's Load of the whole repository.
pub fn clone(c: &GitConfig, auth: &Auth, dest: &Path) -> Result<()> {
    let what = format!("cloning {}", crate::classify::redact(&c.repo));
    let err = |e: gix::Error| gix_error(&what, e);
    let url = c.repo.trim();
    let mut prep = gix::prepare_clone(url, dest).map_err(err)?;
    prep = prep.with_in_memory_config_overrides(auth.gix_overrides());
    if let Some((user, password)) = auth.basic() {
        prep = prep.configure_connection(move |conn| {
            let (user, password) = (user.clone(), password.clone());
            conn.set_credentials(move |action| match action {
                gix::credentials::helper::Action::Get(ctx) => Ok(Some(gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: user.clone(),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: ctx.into(),
                })),
                _ => Ok(None),
            });
            Ok(())
        });
    }
    if !c.fetch.is_empty() {
        let mut extra_refspecs = Vec::new();
        for spec in &c.fetch {
            let parsed = gix::refspec::parse(spec.as_str().into(), gix::refspec::parse::Operation::Fetch)
                .map_err(|e| Error::invalid_field("fetch", e))?;
            extra_refspecs.push(parsed.to_owned());
        }
        prep = prep.with_fetch_options(gix::remote::ref_map::Options { extra_refspecs, ..Default::default() });
    }
    prep = match c.start() {
        Start::RemoteHead => prep,
        Start::Commit(sha) => prep.with_revision(Some(sha)).map_err(err)?,
        Start::Ref(name) => prep.with_ref_name(Some(name.as_str())).map_err(err)?,
    };
    if let Some(depth) = c.depth() {
        prep = prep.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth));
    }
    let (repo, _) = prep.fetch_only(gix::progress::Discard, &NEVER).map_err(|e| not_found_if_no_ref(c, err(e)))?;
    repo.rev_parse_single("HEAD^{commit}").map_err(|e| not_found_if_no_ref(c, err(e)))?;
    Ok(())
}

/// gix words a revision missing on the remote in several ways; all mean NotFound.
fn not_found_if_no_ref(c: &GitConfig, e: Error) -> Error {
    let m = e.message().to_ascii_lowercase();
    let missing = m.contains("didn't have any ref")
        || m.contains("did not have any ref")
        || m.contains("no ref")
        || m.contains("could not be found")
        || m.contains("not found")
        || (m.contains("unborn") && c.revision.is_none());
    if missing && e.kind() != ferry_sdk::ErrorKind::PermissionDenied && e.kind() != ferry_sdk::ErrorKind::Transient {
        let rev = c.revision.as_deref().or(c.branch.as_deref()).unwrap_or("HEAD");
        Error::not_found(format!("revision {rev:?} not found: {}", e.message()))
    } else {
        e
    }
}
