//! `ferry cron`: schedules a `CronWorkflow` in the foreground until SIGINT
//! or SIGTERM. The decisions are ferry-workflow's (`cron::decide`); this
//! module keeps the clock, starts, stops and deletes runs, and says what it
//! did.

use super::{build_runtime, registry};
use crate::cli::{Inputs, RuntimeArgs};
use anyhow::{Result, bail};
use ferry_engine::{Finished, Home, Runtime, WorkflowRecord};
use ferry_workflow::cron::decide::{self, Action, FinishedRun, Rules};
use ferry_workflow::cron::schedule::rfc3339_zoned;
use ferry_workflow::cron::when::CronVars;
use ferry_workflow::cron::{CRON_LABEL, CronWorkflow};
use ferry_workflow::model::Documents;
use ferry_workflow::plan::PlanOptions;
use ferry_workflow::problem::PlanError;
use ferry_workflow::values::Phase;
use jiff::{Timestamp, Zoned};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// For tests only: how many scheduler seconds pass per real second, so a
/// test sees minutely ticks every second. Steps still run in real time.
const SPEED_ENV: &str = "FERRY_CRON_SPEED";

/// How often finished runs are looked for while some run.
const REAP_EVERY: Duration = Duration::from_millis(250);

/// The scheduler's clock: real time, or for tests real time sped up.
struct Clock {
    started: Instant,
    origin: Timestamp,
    speed: f64,
}

impl Clock {
    fn from_env() -> Result<Clock> {
        let speed = ferry_sdk::env::positive(SPEED_ENV)?.unwrap_or(1) as f64;
        Ok(Clock { started: Instant::now(), origin: Timestamp::now(), speed })
    }

    fn now(&self) -> Timestamp {
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed;
        self.origin + jiff::SignedDuration::from_secs_f64(elapsed)
    }

    /// Real time until the clock shows `at`.
    fn until(&self, at: Timestamp) -> Duration {
        let ahead = at.duration_since(self.now()).as_secs_f64().max(0.0);
        Duration::from_secs_f64(ahead / self.speed)
    }
}

/// A run this process started and has not seen finish.
struct Active {
    name: String,
    stop: CancellationToken,
    handle: JoinHandle<Result<Finished, ferry_engine::Error>>,
}

struct Scheduler {
    home: Arc<Home>,
    inputs: Inputs,
    cron: CronWorkflow,
    rules: Rules,
    runtime: Arc<dyn Runtime>,
    runtime_args: RuntimeArgs,
    active: Vec<Active>,
    vars: CronVars,
}

pub(super) async fn cron(home: Home, inputs: &Inputs, runtime_args: RuntimeArgs) -> Result<u8> {
    let (cron, rules) = load(&inputs.files)?;
    // The workflow a tick runs is checked now, not at its first tick.
    home.plan(&inputs.files, plan_options(inputs, None)?)?;
    let name = cron.metadata.name.clone();
    if rules.suspend {
        println!("{name}: suspended (spec.suspend: true): nothing is scheduled");
        return Ok(0);
    }
    let runtime = build_runtime(&runtime_args, &home)?;
    let vars = CronVars {
        name: name.clone(),
        namespace: if cron.metadata.namespace.is_empty() { "default".into() } else { cron.metadata.namespace.clone() },
        labels: cron.metadata.labels.clone(),
        annotations: cron.metadata.annotations.clone(),
        ..Default::default()
    };
    let mut s = Scheduler {
        home: Arc::new(home),
        inputs: inputs.clone(),
        cron,
        rules,
        runtime,
        runtime_args,
        active: Vec::new(),
        vars,
    };
    let clock = Clock::from_env()?;
    let interrupt = on_signal();
    let mut cursor = clock.now();
    let mut announced = None;
    loop {
        s.reap().await;
        let Some(next) = s.rules.schedule.next_after(cursor) else {
            println!("{name}: the schedule names no later time");
            break;
        };
        if announced.replace(next.timestamp()) != Some(next.timestamp()) {
            println!("{name}: next run at {}", rfc3339_zoned(&next));
        }
        // While runs go, wake now and then to say how they ended.
        let watch = if s.active.is_empty() { Duration::MAX } else { REAP_EVERY };
        tokio::select! {
            () = tokio::time::sleep(clock.until(next.timestamp())) => {}
            () = tokio::time::sleep(watch) => continue,
            () = interrupt.cancelled() => break,
        }
        s.reap().await;
        let now = clock.now();
        if let Some(due) = s.rules.schedule.latest_due(cursor, now) {
            cursor = due.tick.timestamp();
            s.tick(&due.tick, now).await;
        }
    }
    s.stop_all().await;
    Ok(0)
}

/// The one `CronWorkflow` among the files, with its checked rules.
fn load(files: &[std::path::PathBuf]) -> Result<(CronWorkflow, Rules)> {
    let docs = Documents::load(files)?;
    let [(source, cron)] = docs.crons.as_slice() else {
        bail!("ferry cron needs exactly one CronWorkflow among the files ({} given)", docs.crons.len());
    };
    if !docs.workflows.is_empty() {
        bail!("ferry cron runs a CronWorkflow; give its Workflow documents to ferry run");
    }
    let rules = cron.spec.rules().map_err(|problems| PlanError { file: source.to_string(), problems })?;
    Ok((cron.clone(), rules))
}

fn plan_options(inputs: &Inputs, scheduled: Option<Timestamp>) -> Result<PlanOptions> {
    Ok(PlanOptions { registry: registry(inputs.drivers.as_ref())?, scheduled, ..Default::default() })
}

/// A token cancelled by the first SIGINT or SIGTERM.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
        }
        cancel.cancel();
    });
    token
}

impl Scheduler {
    fn name(&self) -> &str {
        &self.cron.metadata.name
    }

    /// Does what the tick at `tick` calls for.
    async fn tick(&mut self, tick: &Zoned, now: Timestamp) {
        let at = rfc3339_zoned(tick);
        let holds = match self.rules.when.holds(&self.vars) {
            Ok(holds) => holds,
            Err(e) => {
                println!("{}: run at {at} skipped: spec.when: {e}", self.name());
                return;
            }
        };
        let running: Vec<String> = self.active.iter().map(|a| a.name.clone()).collect();
        match decide::at_tick(&self.rules, tick.timestamp(), now, &running, holds) {
            Action::Skip(why) => println!("{}: run at {at} skipped: {why}", self.name()),
            Action::Start { stop } => {
                for name in stop {
                    self.replace(&name).await;
                }
                if let Err(e) = self.start(tick).await {
                    println!("{}: run at {at} not started: {e:#}", self.name());
                }
                self.vars.last_scheduled_time = at;
            }
        }
    }

    /// Records and starts the run of `tick`.
    async fn start(&mut self, tick: &Zoned) -> Result<()> {
        let mut plan = self.home.plan(&self.inputs.files, plan_options(&self.inputs, Some(tick.timestamp()))?)?;
        plan.runtime = self.runtime_args.choice();
        let wf = self.home.create(&plan)?;
        println!("{}: started {} (scheduled {})", self.name(), wf.name, rfc3339_zoned(tick));
        let stop = CancellationToken::new();
        let (home, runtime, token) = (self.home.clone(), self.runtime.clone(), stop.clone());
        let name = wf.name.clone();
        let handle = tokio::spawn(async move { home.execute(wf, plan, runtime, token, None).await });
        self.active.push(Active { name, stop, handle });
        Ok(())
    }

    /// Stops a running run for `concurrencyPolicy: Replace`; it ends Failed, as Argo's terminated run does.
    async fn replace(&mut self, name: &str) {
        let Some(i) = self.active.iter().position(|a| a.name == name) else { return };
        let active = self.active.remove(i);
        active.stop.cancel();
        let _ = active.handle.await;
        let message = "stopped: the next run replaced it (concurrencyPolicy: Replace)";
        let marked = self.home.workflow(name).and_then(|wf| {
            Ok(self.home.store().set_phase(wf.id, Phase::Failed, message, Some(ferry_workflow::time::now_ms()))?)
        });
        match marked {
            Ok(()) => println!("{name} Failed: {message}"),
            Err(e) => println!("{name}: stopped, but not marked failed: {e}"),
        }
        self.vars.failed += 1;
    }

    /// Says how finished runs ended, then deletes runs beyond the history limits.
    async fn reap(&mut self) {
        let (done, going): (Vec<Active>, Vec<Active>) = self.active.drain(..).partition(|a| a.handle.is_finished());
        self.active = going;
        for a in done {
            match a.handle.await {
                Ok(Ok(f)) => {
                    let phase = f.workflow.phase;
                    let why =
                        if f.workflow.message.is_empty() { String::new() } else { format!(": {}", f.workflow.message) };
                    println!("{} {}{why}", a.name, phase.as_str());
                    if phase == Phase::Succeeded { self.vars.succeeded += 1 } else { self.vars.failed += 1 }
                }
                Ok(Err(e)) => println!("{} Error: {e}", a.name),
                Err(e) => println!("{} Error: {e}", a.name),
            }
        }
        self.enforce_history().await;
    }

    /// Deletes (with `ferry delete`'s artifact GC) finished runs of this
    /// cron workflow beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`.
    async fn enforce_history(&self) {
        let runs = match self.home.store().workflows() {
            Ok(runs) => runs,
            Err(e) => return println!("{}: history not enforced: {e}", self.name()),
        };
        let finished: Vec<FinishedRun> = runs
            .iter()
            .filter(|wf| wf.phase.is_done() && self.is_ours(wf))
            .map(|wf| FinishedRun {
                name: wf.name.clone(),
                finished: wf.finished.unwrap_or(wf.created),
                succeeded: wf.phase == Phase::Succeeded,
            })
            .collect();
        for name in decide::beyond_history(&finished, self.cron.spec.history_limits()) {
            match self.home.delete(&name, false).await {
                Ok(r) => println!("deleted {name} (history limit; {} artifact(s) deleted)", r.deleted),
                Err(e) => println!("{name}: not deleted: {e}"),
            }
        }
    }

    /// A run of this cron workflow: named `<cron>-<digits>` and labelled so.
    fn is_ours(&self, wf: &WorkflowRecord) -> bool {
        let named = wf
            .name
            .strip_prefix(self.name())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
        named
            && self
                .home
                .stored_plan(wf)
                .is_ok_and(|p| p.metadata.labels.get(CRON_LABEL).map(String::as_str) == Some(self.name()))
    }

    /// On SIGINT/SIGTERM: stops every running run, resumable as after `ferry run`'s Ctrl-C.
    async fn stop_all(&mut self) {
        for a in self.active.drain(..) {
            a.stop.cancel();
            let _ = a.handle.await;
            println!("{} stopped: ferry resume {} continues it", a.name, a.name);
        }
    }
}
