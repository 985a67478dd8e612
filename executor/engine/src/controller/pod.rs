//! One step's pod: its inputs loaded (by init drivers when the runtime runs
//! drivers beside each step), its main container run (beside its sidecar
//! drivers), its outputs saved.

use super::Call;
use super::Controller;
use super::nodes::GLOBAL;
use super::outcome::Ended;
use crate::artifacts::StepContext;
use crate::drivers::{DRIVER_GRACE, DriverPool};
use crate::error::StepError;
use crate::probe;
use crate::runtime::{DriverRole, PodExit, PodSpec, Runtime, RuntimeError};
use crate::volumes;
use ferry_workflow::binding::{Bound, BoundArtifact};
use ferry_workflow::model::Template;
use ferry_workflow::naming;
use ferry_workflow::values::{Outputs, Phase};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Controller {
    pub(super) async fn run_pod(
        self: Arc<Self>,
        id: u32,
        call: &Call,
        template: &Template,
        bound: Bound,
        cancel: CancellationToken,
        deadline: Option<Duration>,
    ) -> Ended {
        let permit = tokio::select! {
            p = self.pods.clone().acquire_owned() => p,
            () = cancel.cancelled() => return Ended::new(self.cancel_phase(), ""),
        };
        let Ok(_permit) = permit else { return Ended::error("controller shutting down") };
        self.set_running(id);
        let pod_name = naming::pod_name(&self.plan.name, &template.name, &call.name);
        tracing::Span::current().record("pod", pod_name.as_str());
        let pods = PodSpec::from_template(&self.wf.dir, &pod_name, template).and_then(|p| {
            let volumes = volumes::mounts(&self.plan, &self.wf.dir, &p.dir, template)?;
            let p = PodSpec { deadline, run: self.wf.uid.clone(), volumes, ..p };
            let sidecars = self.sidecar_pods(&p, template)?;
            // The main container joins the first sidecar's network, as
            // containers of one Kubernetes pod share theirs.
            Ok((PodSpec { network_of: sidecars.first().map(|s| s.name.clone()), ..p }, sidecars))
        });
        let (mut pod, sidecar_pods) = match pods {
            Ok(pods) => pods,
            Err(e) => return Ended::error(e),
        };
        if let Err(e) = self.env_from(template, &mut pod.env) {
            return Ended::error(e);
        }
        let ctx = StepContext {
            plan: &self.plan,
            runtime: self.runtime.as_ref(),
            drivers: &self.drivers,
            pod: &pod,
            node: id,
            template,
            vars: &bound.vars,
        };
        if let Err(ended) = self.load_inputs(&ctx, &bound.artifacts).await {
            return ended;
        }
        let containers = Sidecars::start(self.runtime.clone(), sidecar_pods);
        if template.daemon == Some(true) {
            return self.run_daemon(&pod, template, containers, cancel).await;
        }
        let sidecars = self.step_pool(&pod, DriverRole::Sidecar);
        let ctx = StepContext { drivers: sidecars.as_ref().unwrap_or(&self.drivers), ..ctx };
        let exit = self.run_main(&ctx, sidecars.as_ref(), cancel).await;
        containers.stop().await;
        let exit = match exit {
            Ok(exit) => exit,
            Err(ended) => return ended,
        };
        let ended = self.save_outputs(&ctx, &exit, sidecars.as_ref()).await;
        volumes::release_pod(&pod.dir);
        if ended.phase == Phase::Succeeded {
            let _ = std::fs::remove_dir_all(pod.dir.join("root"));
        }
        ended
    }

    /// Fills in `env[].valueFrom`: a secret's key from `FERRY_SECRETS_DIR`,
    /// a key of a ConfigMap given with the workflow.
    fn env_from(&self, template: &Template, env: &mut [(String, String)]) -> Result<(), StepError> {
        let declared = match (&template.container, &template.script) {
            (Some(c), _) => &c.env,
            (None, Some(s)) => &s.env,
            _ => return Ok(()),
        };
        for e in declared {
            let Some(from) = &e.value_from else { continue };
            let at = format!("env {}", e.name);
            let value = if let Some(key) = &from.secret_key_ref {
                volumes::secret_key(&key.name, &key.key).map_err(|why| StepError::invalid(&at, why))?
            } else if let Some(key) = &from.config_map_key_ref {
                let map = self.plan.config_maps.get(&key.name);
                map.and_then(|m| m.get(&key.key)).cloned().ok_or_else(|| {
                    StepError::invalid(&at, format!("no ConfigMap {:?} with key {:?} was given", key.name, key.key))
                })?
            } else {
                continue;
            };
            if let Some(slot) = env.iter_mut().find(|(name, _)| *name == e.name) {
                slot.1 = value;
            }
        }
        Ok(())
    }

    /// The pods of the template's `sidecars`, each with its own mounts (the
    /// main container's too with `mirrorVolumeMounts`).
    fn sidecar_pods(&self, pod: &PodSpec, template: &Template) -> Result<Vec<PodSpec>, RuntimeError> {
        let mut pods = Vec::new();
        for sidecar in &template.sidecars {
            let mirrored = if sidecar.mirror_volume_mounts { volumes::main_mounts(template) } else { &[] };
            let wanted: Vec<_> = sidecar.volume_mounts.iter().chain(mirrored).cloned().collect();
            let volumes = volumes::mounts_of(&self.plan, &self.wf.dir, &pod.dir, template, &wanted)?;
            let side = pod.sidecar(sidecar, volumes)?;
            let network_of = pods.first().map(|p: &PodSpec| p.name.clone());
            pods.push(PodSpec { network_of, ..side });
        }
        Ok(pods)
    }

    /// Runs a daemon: once its readiness probe passes (at once without
    /// one) the node succeeds with the pod's address as `ip`, and the pod
    /// keeps running, with its sidecars, until `cancel`: the end of the
    /// steps or DAG template that started it (or the run's).
    async fn run_daemon(
        self: &Arc<Self>,
        pod: &PodSpec,
        template: &Template,
        containers: Sidecars,
        cancel: CancellationToken,
    ) -> Ended {
        let runtime = self.runtime.clone();
        let (main, stop) = (pod.clone(), cancel.child_token());
        let stopped = stop.clone();
        let mut process = tokio::spawn(async move { runtime.run(&main, stopped).await });
        let probe = template.container.as_ref().and_then(|c| c.readiness_probe.as_ref());
        let probe = probe.or_else(|| template.script.as_ref().and_then(|s| s.readiness_probe.as_ref()));
        let ready = async {
            let address = self.runtime.address(pod).await.map_err(|e| e.to_string())?;
            if let Some(probe) = probe {
                probe::wait_ready(self.runtime.as_ref(), pod, &address, probe).await?;
            }
            Ok::<_, String>(address)
        };
        let ready = tokio::select! {
            ready = ready => ready,
            exit = &mut process => {
                containers.stop().await;
                return match exit {
                    Ok(Ok(exit)) if exit.cancelled && self.interrupt.is_cancelled() => Ended::unfinished(),
                    Ok(Ok(exit)) => {
                        let (phase, message) = exit_phase(&exit);
                        let phase = if phase == Phase::Succeeded { Phase::Failed } else { phase };
                        let outputs = Outputs { exit_code: exit.code, ..Outputs::default() };
                        Ended { phase, message: format!("the daemon ended before it was ready ({message})"), outputs }
                    }
                    Ok(Err(e)) => Ended::error(e),
                    Err(e) => Ended::error(format!("the daemon's task failed: {e}")),
                };
            }
        };
        let address = match ready {
            Ok(address) => address,
            Err(why) => {
                stop.cancel();
                let _ = process.await;
                containers.stop().await;
                return Ended::error(format!("readinessProbe: {why}"));
            }
        };
        let dir = pod.dir.clone();
        let daemon = tokio::spawn(async move {
            let _ = process.await;
            containers.stop().await;
            volumes::release_pod(&dir);
        });
        self.daemons.lock().push((stop, daemon));
        Ended {
            phase: Phase::Succeeded,
            message: String::new(),
            outputs: Outputs { ip: Some(address), ..Outputs::default() },
        }
    }

    /// Loads the step's inputs, through init drivers of its own when the
    /// runtime runs them. The init containers end before the main container
    /// starts; one that does not exit 0 fails the pod, as in Kubernetes.
    async fn load_inputs(&self, ctx: &StepContext<'_>, inputs: &[BoundArtifact]) -> Result<(), Ended> {
        let init = self.step_pool(ctx.pod, DriverRole::Init);
        let ctx = StepContext { drivers: init.as_ref().unwrap_or(ctx.drivers), ..*ctx };
        let (loaded, records) = ctx.load_inputs(inputs).await;
        self.record_artifacts(records);
        let init_failed = match &init {
            Some(pool) => pool.shutdown(DRIVER_GRACE).await,
            None => Vec::new(),
        };
        loaded.map_err(Ended::error)?;
        if !init_failed.is_empty() {
            return Err(Ended::error(StepError::Containers { which: "init containers", names: init_failed }));
        }
        Ok(())
    }

    /// Runs the main container, its sidecar drivers starting beside it. An
    /// `Err` is how the pod ended without an exit to read: it could not
    /// run, or the run was interrupted (the sidecars are then stopped).
    async fn run_main(
        &self,
        ctx: &StepContext<'_>,
        sidecars: Option<&DriverPool>,
        cancel: CancellationToken,
    ) -> Result<PodExit, Ended> {
        let run = self.runtime.run(ctx.pod, cancel);
        let exit = match sidecars {
            Some(pool) => {
                let names = ctx.output_drivers();
                let (exit, started) = tokio::join!(run, pool.start_all(&names));
                if let Err(e) = started {
                    pool.shutdown(DRIVER_GRACE).await;
                    return Err(Ended::error(e));
                }
                exit
            }
            None => run.await,
        };
        let ended = match exit {
            Err(e) => Ended::error(e),
            Ok(exit) if exit.cancelled && self.interrupt.is_cancelled() => Ended::unfinished(),
            Ok(exit) => return Ok(exit),
        };
        if let Some(pool) = sidecars {
            pool.shutdown(DRIVER_GRACE).await;
        }
        Err(ended)
    }

    /// The pod's end from its exit and its saved outputs; the sidecars
    /// stop once the outputs are saved, and one that fails fails the pod.
    async fn save_outputs(&self, ctx: &StepContext<'_>, exit: &PodExit, sidecars: Option<&DriverPool>) -> Ended {
        let mut outputs = Outputs { exit_code: exit.code, ..Default::default() };
        // An empty result is not stored: most steps print nothing, and a
        // 100,000-node run should not carry 100,000 empty strings.
        let result = exit.stdout.strip_suffix('\n').unwrap_or(&exit.stdout);
        outputs.result = (!result.is_empty()).then(|| result.to_string());
        let (phase, message) = exit_phase(exit);
        let mut saved = ctx.save_outputs(phase == Phase::Succeeded, &mut outputs).await;
        if let Some(pool) = sidecars {
            let failed = pool.shutdown(DRIVER_GRACE).await;
            if !failed.is_empty() && saved.error.is_none() && phase == Phase::Succeeded {
                saved.error = Some(StepError::Containers { which: "sidecars", names: failed });
            }
        }
        self.record_artifacts(saved.records);
        for (global, value) in saved.globals {
            self.record_global(&global, &value);
            outputs.parameters.insert(format!("{GLOBAL}{global}"), value);
        }
        for (global, value) in saved.global_artifacts {
            self.state.lock().global_artifacts.insert(global.clone(), value.clone());
            outputs.artifacts.insert(format!("{GLOBAL}{global}"), value);
        }
        let (phase, message) = match saved.error {
            Some(e) if phase == Phase::Succeeded => (Phase::Error, e.to_string()),
            Some(e) => (phase, format!("{message}; {e}")),
            None => (phase, message),
        };
        Ended { phase, message, outputs }
    }

    /// A pool for one of a step's driver groups, when the runtime runs
    /// drivers beside each step.
    fn step_pool(&self, pod: &PodSpec, role: DriverRole) -> Option<DriverPool> {
        let launcher = self.runtime.step_drivers(pod, role)?;
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let logs = pod.log.parent().map_or_else(|| pod.dir.clone(), std::path::Path::to_path_buf);
        Some(DriverPool::with_short_sockets(self.plan.registry.clone(), None, tag, logs).with_launcher(launcher))
    }
}

/// The running `sidecars` of a step: started before its main container,
/// stopped (and waited for) after it; how they end does not change the step's.
struct Sidecars {
    cancel: CancellationToken,
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl Sidecars {
    fn start(runtime: Arc<dyn Runtime>, pods: Vec<PodSpec>) -> Sidecars {
        let cancel = CancellationToken::new();
        let running = pods
            .into_iter()
            .map(|pod| {
                let (runtime, cancel) = (runtime.clone(), cancel.clone());
                tokio::spawn(async move {
                    if let Err(e) = runtime.run(&pod, cancel).await {
                        tracing::warn!(sidecar = %pod.name, "the sidecar could not run: {e}");
                    }
                })
            })
            .collect();
        Sidecars { cancel, running }
    }

    async fn stop(self) {
        self.cancel.cancel();
        futures::future::join_all(self.running).await;
    }
}

/// A pod's phase and message from how its main container exited.
fn exit_phase(exit: &PodExit) -> (Phase, String) {
    match (exit.code, exit.signal) {
        _ if exit.timed_out || exit.cancelled => (Phase::Failed, "Step exceeded its deadline".to_string()),
        (Some(0), _) => (Phase::Succeeded, String::new()),
        (Some(code), _) => (Phase::Failed, format!("Error (exit code {code})")),
        (None, Some(sig)) => (Phase::Failed, format!("killed by signal {sig}")),
        (None, None) => (Phase::Error, "ended without a status".to_string()),
    }
}
