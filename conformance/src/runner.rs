//! Runs a selection of the catalogue against one driver.

use crate::case::{Case, Need, Skipped};
use crate::cases;
use crate::context::{Cx, ManagedDriver, RunContext};
use crate::profile::Profile;
use crate::report::{self, CaseResult, Status};
use anyhow::{Context as _, Result};
use ferry_sdk::client::{DriverClient, Location};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which cases run, and how strictly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A smoke test: four cases.
    Quick,
    /// The cases tagged Core: what Argo's executor and argo-server need with
    /// the default tar archive.
    Core,
    /// Every applicable case.
    Full,
    /// Every case, no skipped MUST case, no expected failures.
    Certify,
}

/// Everything a run needs.
pub struct Options {
    /// The driver profile.
    pub profile: Profile,
    /// Test a driver already listening here instead of launching it.
    pub socket: Option<PathBuf>,
    /// Which cases, how strictly.
    pub mode: Mode,
    /// Only IDs matching this.
    pub focus: Option<regex::Regex>,
    /// Not IDs matching this.
    pub skip: Option<regex::Regex>,
    /// Scratch directory shared with the driver (default: a fresh temporary one).
    pub work_dir: Option<PathBuf>,
    /// Payload seed (default: random, printed).
    pub seed: Option<u64>,
}

/// What a run produced.
pub struct Outcome {
    /// Per-case results, in run order.
    pub results: Vec<CaseResult>,
    /// The observed capability profile.
    pub capabilities: serde_json::Value,
    /// Run id (the key namespace).
    pub run_id: String,
    /// Payload seed.
    pub seed: u64,
    /// 0 when every MUST case passed, 1 otherwise.
    pub exit_code: i32,
}

/// The socket path a managed driver gets, as Argo lays it out.
pub fn socket_path(work: &std::path::Path, driver: &str) -> PathBuf {
    work.join("artifact-plugins").join(driver).join("socket")
}

/// The cases `mode`, `focus` and `skip` select.
pub fn select(mode: Mode, focus: Option<&regex::Regex>, skip: Option<&regex::Regex>) -> Vec<Case> {
    const QUICK: [&str; 4] = ["AD-LIFE-001", "AD-FILE-001", "AD-NF-002", "AD-DEL-002"];
    cases::all()
        .into_iter()
        .filter(|c| mode != Mode::Quick || QUICK.contains(&c.id))
        .filter(|c| mode != Mode::Core || c.tags.contains(&"Core"))
        .filter(|c| focus.is_none_or(|re| re.is_match(c.id)))
        .filter(|c| skip.is_none_or(|re| !re.is_match(c.id)))
        .collect()
}

/// Runs the selected cases, printing one TAP line per case as it finishes.
/// Errors here mean the run itself could not happen (exit code 3 territory).
pub async fn run(opts: Options) -> Result<Outcome> {
    let run_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let seed = opts.seed.unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let temp = tempdir_guard(opts.work_dir.is_none())?;
    let work = opts.work_dir.clone().unwrap_or_else(|| temp.as_ref().expect("temp dir").clone()).join(&run_id);
    std::fs::create_dir_all(&work)?;
    let profile = opts.profile;
    if opts.socket.is_some() || profile.launch.as_ref().is_some_and(|l| l.image.is_some()) {
        // An image runs as its own non-root user, as in Argo, where the
        // shared volume is an emptyDir anyone may write, and a driver already
        // running (--socket) may be such a container: so is everything here.
        rustix::process::umask(rustix::fs::Mode::empty());
        std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    }
    let fill = |c: &str| c.replace("{sharedDir}", &work.to_string_lossy());
    let configuration = fill(&profile.plugin.configuration);
    let alt_configuration = profile.plugin.alt_configuration.as_deref().map(fill);

    let (driver, socket) = match &opts.socket {
        Some(socket) => (None, socket.clone()),
        None => {
            let socket = socket_path(&work, &profile.driver.name);
            let driver = ManagedDriver::start(&profile, &work, &socket, &work.join("driver.stderr"))?;
            (Some(Arc::new(std::sync::Mutex::new(driver))), socket)
        }
    };
    let client = DriverClient::connect(&socket, Duration::from_secs(30))
        .await
        .with_context(|| format!("connecting to the driver at {}", socket.display()))?;
    let supports_save_stream = client.supports_save_stream().await.context("GetCapabilities")?;
    let baseline_fds = driver.as_ref().and_then(|d| d.lock().ok()?.open_fds().ok());

    println!("TAP version 14");
    println!("# ferry-conformance {} against {:?}", env!("CARGO_PKG_VERSION"), profile.driver.name);
    println!("# run {run_id}, seed {seed}, socket {}", socket.display());
    let selected = select(opts.mode, opts.focus.as_ref(), opts.skip.as_ref());
    println!("1..{}", selected.len());

    let cx = Arc::new(RunContext {
        profile,
        client,
        run_id: run_id.clone(),
        work: work.clone(),
        configuration,
        alt_configuration,
        supports_save_stream,
        driver,
        seed,
        baseline_fds,
        observed: std::sync::Mutex::new(serde_json::Map::new()),
    });
    let mut results = Vec::with_capacity(selected.len());
    for (i, case) in selected.iter().enumerate() {
        let result = run_case(&cx, case).await;
        println!("{}", report::tap_line(i + 1, &result));
        results.push(result);
    }

    cleanup(&cx).await;
    if let Some(driver) = &cx.driver {
        let grace = Duration::from_secs(cx.profile.limits.sigterm_grace_seconds);
        let _ = driver.lock().expect("driver").terminate(grace);
    }
    let certify = opts.mode == Mode::Certify;
    let exit_code = if results.iter().any(|r| r.fails_run(certify)) { 1 } else { 0 };
    if let Some(dir) = &temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    let mut capabilities = cx.observed.lock().expect("observations").clone();
    capabilities.insert("supportsSaveStream".into(), supports_save_stream.into());
    Ok(Outcome { results, capabilities: capabilities.into(), run_id, seed, exit_code })
}

fn tempdir_guard(needed: bool) -> Result<Option<PathBuf>> {
    if !needed {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!("ferry-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(Some(dir))
}

fn unmet(cx: &RunContext, need: Need) -> Option<&'static str> {
    let p = &cx.profile;
    let missing = match need {
        Need::Directories => !p.claims.directories,
        Need::SaveStream => !cx.supports_save_stream,
        Need::Managed => cx.driver.is_none(),
        Need::Writable => p.claims.read_only,
        Need::Alt => cx.alt_configuration.is_none(),
        Need::Persistent => !p.claims.persistent,
        Need::BadConfigurations => p.bad_configurations.is_empty(),
        Need::Secrets => p.secrets.is_empty(),
        Need::FaultHook => p.hooks.backend_down.is_none(),
        Need::NoRootKey => p.claims.root_key,
        Need::Delete => !p.claims.delete,
        Need::List => !p.claims.list,
    };
    missing.then_some(match need {
        Need::Directories => "the profile does not claim directories",
        Need::SaveStream => "GetCapabilities does not advertise SaveStream",
        Need::Managed => "the driver was attached with --socket, not launched by the suite",
        Need::Writable => "the profile claims read-only",
        Need::Alt => "the profile has no plugin.altConfiguration",
        Need::Persistent => "the profile claims objects do not survive a restart",
        Need::BadConfigurations => "the profile lists no badConfigurations",
        Need::Secrets => "the profile lists no secrets",
        Need::FaultHook => "the profile has no hooks.backendDown command",
        Need::NoRootKey => "the profile claims rootKey: the empty key is the whole repository",
        Need::Delete => "the profile claims delete: false",
        Need::List => "the profile claims list: false",
    })
}

async fn run_case(cx: &Arc<RunContext>, case: &Case) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        id: case.id,
        level: case.level.as_str(),
        tags: case.tags,
        title: case.title,
        status: Status::Pass,
        message: String::new(),
        duration_ms: 0,
    };
    if let Some(reason) = case.needs.iter().find_map(|n| unmet(cx, *n)) {
        result.status = Status::Skip;
        result.message = reason.to_string();
        return result;
    }
    let deadline = Duration::from_secs(cx.profile.limits.rpc_deadline_seconds * 3);
    let task = tokio::spawn((case.run)(Cx { run: cx.clone(), id: case.id }));
    let outcome = match tokio::time::timeout(deadline, task).await {
        Err(_) => Err(anyhow::anyhow!("no answer within {deadline:?}: the driver hangs")),
        Ok(Err(join)) => Err(anyhow::anyhow!("case panicked: {join}")),
        Ok(Ok(r)) => r,
    };
    result.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(err) = outcome {
        if let Some(skipped) = err.downcast_ref::<Skipped>() {
            result.status = Status::Skip;
            result.message = skipped.0.clone();
        } else {
            result.status = Status::Fail;
            result.message = format!("{err:#}");
            if let Some(expected) = cx.profile.expected_failures.iter().find(|e| e.id == case.id) {
                result.status = Status::Todo;
                result.message = format!("expected failure: {} ({})", expected.reason, result.message);
            }
        }
    }
    result
}

/// Deletes the run's namespace through the driver; leftovers are reported, not failed.
async fn cleanup(cx: &RunContext) {
    if cx.profile.claims.read_only {
        return;
    }
    if !cx.profile.claims.delete {
        println!("# cleanup: the profile claims delete: false, so what the run wrote stays");
        return;
    }
    let root = format!("{}{}", cx.profile.plugin.key_prefix, cx.run_id);
    let at = Location::new(&cx.profile.driver.name, &cx.configuration, &root);
    // The trailing `/` makes it a directory delete: everything the run wrote.
    if let Err(e) = cx.client.delete(&at.with_key(format!("{root}/"))).await {
        println!("# cleanup: deleting {root} failed: {e}");
    } else if let Ok(left) = cx.client.list(&at).await
        && !left.is_empty()
    {
        println!("# cleanup: {} objects left under {root}", left.len());
    }
}
