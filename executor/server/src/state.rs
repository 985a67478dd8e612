//! What every request shares: the home, the driver pools that read runs'
//! artifacts, and the runs this server drives.

use crate::driving::Driving;
use crate::error::Result;
use crate::{Options, RuntimeFactory};
use ferry_engine::{DRIVER_GRACE, DriverPool, Home, WorkflowRecord};
use ferry_workflow::plan::Plan;
use ferry_workflow::registry::Registry;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The state behind every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) home: Arc<Home>,
    pub(crate) pools: Arc<Pools>,
    pub(crate) options: Arc<Options>,
    pub(crate) driving: Arc<Driving>,
    pub(crate) runtime: RuntimeFactory,
    pub(crate) plans: Arc<Plans>,
}

/// Plans kept decoded beyond this many are dropped, oldest first.
const PLANS: usize = 64;

/// Decoded plans by run uid: a run's plan never changes once recorded (a
/// row id may be reused by a later run once a run is deleted; a uid is not).
#[derive(Default)]
pub(crate) struct Plans {
    plans: Mutex<std::collections::VecDeque<(String, Arc<Plan>)>>,
}

impl Plans {
    /// Run `id`'s plan, decoded by `decode` the first time.
    pub(crate) fn get(&self, uid: &str, decode: impl FnOnce() -> Result<Plan>) -> Result<Arc<Plan>> {
        if let Some((_, p)) = self.plans.lock().iter().find(|(u, _)| u == uid) {
            return Ok(p.clone());
        }
        let plan = Arc::new(decode()?);
        let mut plans = self.plans.lock();
        plans.push_back((uid.to_string(), plan.clone()));
        if plans.len() > PLANS {
            plans.pop_front();
        }
        Ok(plan)
    }

    /// Forgets a deleted run's plan.
    pub(crate) fn forget(&self, uid: &str) {
        self.plans.lock().retain(|(u, _)| u != uid);
    }
}

/// Pools kept idle beyond this many are shut down, least recently used first.
const IDLE_POOLS: usize = 16;

/// One driver pool per run whose artifacts were asked for, so a driver
/// starts once per run rather than once per request.
#[derive(Default)]
pub(crate) struct Pools {
    pools: Mutex<HashMap<String, (Arc<DriverPool>, std::time::Instant)>>,
    uploads: std::sync::OnceLock<Arc<DriverPool>>,
}

impl Pools {
    /// The pool reading `wf`'s artifacts, with the drivers of its plan.
    pub(crate) fn get(&self, home: &Home, wf: &WorkflowRecord) -> Result<Arc<DriverPool>> {
        let now = std::time::Instant::now();
        if let Some((pool, used)) = self.pools.lock().get_mut(&wf.uid) {
            *used = now;
            return Ok(pool.clone());
        }
        let plan = home.stored_plan(wf)?;
        let pool = Arc::new(home.reader_drivers(wf, plan.registry));
        let mut pools = self.pools.lock();
        let pool = pools.entry(wf.uid.clone()).or_insert((pool, now)).0.clone();
        self.evict(&mut pools);
        Ok(pool)
    }

    /// Shuts down the least recently used pools that no request holds.
    fn evict(&self, pools: &mut HashMap<String, (Arc<DriverPool>, std::time::Instant)>) {
        while pools.len() > IDLE_POOLS {
            let Some(id) = pools
                .iter()
                .filter(|(_, (p, _))| Arc::strong_count(p) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            if let Some((pool, _)) = pools.remove(&id) {
                tokio::spawn(async move { pool.shutdown(DRIVER_GRACE).await });
            }
        }
    }

    /// The pool that stores uploads, with the server's drivers: its
    /// sockets in a scratch directory of this process, removed at shutdown.
    pub(crate) fn uploads(&self, registry: &Registry) -> Arc<DriverPool> {
        self.uploads
            .get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("ferry-upload-{}", std::process::id()));
                let pool = DriverPool::new(registry.clone(), dir.join("artifact-plugins"), dir.join("logs"));
                Arc::new(pool.removing_at_shutdown(dir))
            })
            .clone()
    }

    /// Stops the drivers reading a run (before the run is deleted).
    pub(crate) async fn forget(&self, uid: &str) {
        let pool = self.pools.lock().remove(uid);
        if let Some((pool, _)) = pool {
            pool.shutdown(DRIVER_GRACE).await;
        }
    }

    /// Stops every driver, at server shutdown.
    pub(crate) async fn shutdown(&self) {
        let mut pools: Vec<_> = self.pools.lock().drain().map(|(_, (p, _))| p).collect();
        pools.extend(self.uploads.get().cloned());
        futures::future::join_all(pools.iter().map(|p| p.shutdown(DRIVER_GRACE))).await;
    }
}
