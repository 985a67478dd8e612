//! `memoize`: a node whose key its cache holds, saved no longer than
//! `maxAge` ago, succeeds at once with the saved outputs; a node that
//! succeeds saves its outputs there. Argo keeps the cache in a ConfigMap;
//! Ferry in the home's state database, so every run of the home shares it.

use super::Controller;
use super::outcome::Ended;
use ferry_workflow::model::Template;
use ferry_workflow::time::{self, now_ms};
use ferry_workflow::values::Phase;

impl Controller {
    /// The end of a node of `template` that its cache answers, if it does.
    pub(super) fn memoized(&self, template: &Template) -> Result<Option<Ended>, String> {
        let Some(memo) = &template.memoize else { return Ok(None) };
        let since = match memo.max_age.trim() {
            "" => 0,
            age => {
                let age = time::timeout(age)
                    .ok_or_else(|| format!("memoize.maxAge {age:?} is not a duration such as \"10s\""))?;
                now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
            }
        };
        let cache = &memo.cache.config_map.name;
        let found = self.store.lock().memo(cache, &memo.key, since).map_err(|e| e.to_string())?;
        Ok(found.map(|outputs| Ended {
            phase: Phase::Succeeded,
            message: format!("memoized: cache {cache:?} had key {:?}", memo.key),
            outputs,
        }))
    }

    /// Saves a successful node's outputs in its template's cache.
    pub(super) fn memoize(&self, template: &Template, ended: &Ended) {
        let Some(memo) = &template.memoize else { return };
        if ended.phase != Phase::Succeeded {
            return;
        }
        if let Err(e) = self.store.lock().save_memo(&memo.cache.config_map.name, &memo.key, &ended.outputs, now_ms()) {
            tracing::warn!("memoize: saving key {:?}: {e}", memo.key);
        }
    }
}
