//! `synchronization:` of a workflow or a template: mutexes and semaphores,
//! and the locks they stand for. Argo names a lock by namespace, kind and
//! name (`default/Mutex/deploy`, `default/ConfigMap/limits/builds`); a
//! semaphore's limit is the value of its ConfigMap key.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `synchronization:`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Synchronization {
    /// One mutex (Argo before 3.6).
    pub mutex: Option<Mutex>,
    /// Mutexes, all held together.
    #[serde(default)]
    pub mutexes: Vec<Mutex>,
    /// One semaphore (Argo before 3.6).
    pub semaphore: Option<Semaphore>,
    /// Semaphores, all held together.
    #[serde(default)]
    pub semaphores: Vec<Semaphore>,
}

/// A mutex: held by one workflow or node at a time.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mutex {
    /// The name.
    pub name: String,
    /// Its namespace; the workflow's when empty.
    #[serde(default)]
    pub namespace: String,
}

/// A semaphore: held by at most its limit of workflows or nodes at a time.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Semaphore {
    /// The ConfigMap key holding the limit.
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
    /// Its namespace; the workflow's when empty.
    #[serde(default)]
    pub namespace: String,
}

/// A key of a ConfigMap.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// The ConfigMap.
    pub name: String,
    /// The key.
    pub key: String,
    /// Recorded.
    pub optional: Option<bool>,
}

/// One lock to hold: its Argo name and how many may hold it at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// `<namespace>/Mutex/<name>` or `<namespace>/ConfigMap/<name>/<key>`.
    pub key: String,
    /// 1 for a mutex.
    pub limit: u32,
}

/// Why a synchronization block names no lock that can be held.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    /// A mutex without a name.
    #[error("a mutex needs a name")]
    UnnamedMutex,
    /// A semaphore without `configMapKeyRef`.
    #[error("a semaphore needs configMapKeyRef (database semaphores need Argo's controller database)")]
    NoLimitSource,
    /// The ConfigMap or key of a semaphore's limit is missing.
    #[error("semaphore limit {name}/{key}: no ConfigMap {name:?} with key {key:?} among the workflow's files")]
    MissingLimit {
        /// The ConfigMap.
        name: String,
        /// The key.
        key: String,
    },
    /// The limit is not a whole number.
    #[error("semaphore limit {name}/{key}: {value:?} is not a whole number")]
    BadLimit {
        /// The ConfigMap.
        name: String,
        /// The key.
        key: String,
        /// The value found.
        value: String,
    },
}

impl Synchronization {
    /// The locks this block holds, in a fixed order (by key), so two
    /// holders of the same locks never wait for each other in a circle.
    pub fn locks(
        &self,
        namespace: &str,
        config_maps: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Vec<Lock>, SyncError> {
        let ns = |own: &str| if own.is_empty() { namespace.to_string() } else { own.to_string() };
        let mut locks = Vec::new();
        for m in self.mutex.iter().chain(&self.mutexes) {
            if m.name.is_empty() {
                return Err(SyncError::UnnamedMutex);
            }
            locks.push(Lock { key: format!("{}/Mutex/{}", ns(&m.namespace), m.name), limit: 1 });
        }
        for s in self.semaphore.iter().chain(&self.semaphores) {
            let r = s.config_map_key_ref.as_ref().ok_or(SyncError::NoLimitSource)?;
            let value = config_maps
                .get(&r.name)
                .and_then(|data| data.get(&r.key))
                .ok_or_else(|| SyncError::MissingLimit { name: r.name.clone(), key: r.key.clone() })?;
            let limit = value.trim().parse::<u32>().map_err(|_| SyncError::BadLimit {
                name: r.name.clone(),
                key: r.key.clone(),
                value: value.clone(),
            })?;
            locks.push(Lock { key: format!("{}/ConfigMap/{}/{}", ns(&s.namespace), r.name, r.key), limit });
        }
        locks.sort_by(|a, b| a.key.cmp(&b.key));
        locks.dedup_by(|a, b| a.key == b.key);
        Ok(locks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_carry_argos_names_and_their_limits_in_key_order() {
        let sync: Synchronization = serde_yaml_ng::from_str(
            "mutex: {name: deploy}\nsemaphores: [{configMapKeyRef: {name: limits, key: builds}}]\nmutexes: [{name: a, namespace: other}]\n",
        )
        .unwrap();
        let cms = BTreeMap::from([("limits".to_string(), BTreeMap::from([("builds".to_string(), " 3 ".to_string())]))]);
        let locks = sync.locks("default", &cms).unwrap();
        let keys: Vec<(&str, u32)> = locks.iter().map(|l| (l.key.as_str(), l.limit)).collect();
        assert_eq!(keys, [("default/ConfigMap/limits/builds", 3), ("default/Mutex/deploy", 1), ("other/Mutex/a", 1)]);
    }

    #[test]
    fn a_missing_or_bad_limit_is_named() {
        let sync: Synchronization =
            serde_yaml_ng::from_str("semaphore: {configMapKeyRef: {name: limits, key: builds}}").unwrap();
        assert_eq!(
            sync.locks("default", &BTreeMap::new()),
            Err(SyncError::MissingLimit { name: "limits".into(), key: "builds".into() })
        );
        let cms = BTreeMap::from([("limits".to_string(), BTreeMap::from([("builds".to_string(), "two".to_string())]))]);
        assert!(matches!(sync.locks("default", &cms), Err(SyncError::BadLimit { .. })));
        let nameless: Synchronization = serde_yaml_ng::from_str("mutex: {name: ''}").unwrap();
        assert_eq!(nameless.locks("default", &cms), Err(SyncError::UnnamedMutex));
    }
}
