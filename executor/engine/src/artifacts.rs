//! Moving a step's artifacts, always through a driver: inputs are loaded
//! before the step starts (the init-container role), outputs saved after it
//! ends (the sidecar role). The executor itself never opens storage.

use crate::archive;
use crate::drivers::{DriverPool, ToClient};
use crate::error::StepError;
use crate::runtime::{PodSpec, Runtime};
use crate::status::{ArtifactRecord, Direction};
use ferry_sdk::ErrorKind;
use ferry_workflow::binding::BoundArtifact;
use ferry_workflow::model::{Artifact, GcStrategy, Template};
use ferry_workflow::plan::Plan;
use ferry_workflow::repository::{Declared, Repository, declared};
use ferry_workflow::strategy::Strategy;
use ferry_workflow::values::{ArtifactValue, Location, Outputs};
use ferry_workflow::vars::Vars;
use std::path::{Path, PathBuf};

/// What saving outputs produced.
#[derive(Default)]
pub(crate) struct Saved {
    /// Artifact records to persist.
    pub records: Vec<ArtifactRecord>,
    /// `globalName` parameters.
    pub globals: Vec<(String, String)>,
    /// `globalName` artifacts.
    pub global_artifacts: Vec<(String, ArtifactValue)>,
    /// The first failure, if any.
    pub error: Option<StepError>,
}

/// Everything one step's artifact work needs.
pub(crate) struct StepContext<'a> {
    /// The run's plan.
    pub plan: &'a Plan,
    /// The runtime (maps container paths to host paths).
    pub runtime: &'a dyn Runtime,
    /// The run's drivers.
    pub drivers: &'a DriverPool,
    /// The step's pod.
    pub pod: &'a PodSpec,
    /// The step's node id.
    pub node: u32,
    /// The substituted template.
    pub template: &'a Template,
    /// The step's variables (`pod.name`, `workflow.*`) for key formats.
    pub vars: &'a Vars,
}

/// An input loaded into the step's staging, not yet at its path.
enum Fetched {
    /// Nothing to place: no value, or an optional input that is missing.
    Nothing,
    /// Inline contents (`raw:`).
    Raw(String),
    /// Loaded and unpacked at this staging path.
    Staged(PathBuf, ArtifactRecord),
}

fn staging(pod: &PodSpec, what: &str, name: &str) -> PathBuf {
    pod.dir.join("staging").join(what).join(name)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    tokio::task::spawn_blocking(f).await?
}

impl StepContext<'_> {
    /// The host path of the step's `path`, with every symlink on the way
    /// (and, with `follow_last`, the path itself) resolved against the
    /// step's own tree. A link leading out of the step's tree is refused: a
    /// step must not have ferry read host files into an output, nor write an
    /// input through a link an earlier input or the step made.
    fn inside_step(&self, path: &str, follow_last: bool) -> Result<PathBuf, StepError> {
        // A path in a volume is inside the volume's tree, not the root's.
        let root = self.runtime.host_path(self.pod, self.pod.tree_of(path));
        let host = self.runtime.host_path(self.pod, path);
        let relative =
            host.strip_prefix(&root).map_err(|_| StepError::Refused(format!("{path} is not inside the step")))?;
        let (walk, last) = if follow_last {
            (relative, None)
        } else {
            (relative.parent().unwrap_or(Path::new("")), relative.file_name())
        };
        let canonical = root.canonicalize().map_err(StepError::io("resolving", &root))?;
        // A step that sees its root at `/` writes links with its own paths;
        // one in the path-mapping mode writes them with host paths (its
        // declared paths are mapped to them). Either way an absolute target
        // inside the step is its own.
        let slash = Path::new("/");
        let own: &[&Path] =
            if self.runtime.rooted() && self.pod.tree_of(path) == "/" { &[slash] } else { &[&root, &canonical] };
        let real = archive::resolve_below(&root, walk, own).map_err(|reason| {
            StepError::Refused(format!(
                "refusing {path}: a symlink on the way leads out of the step's files ({reason})"
            ))
        })?;
        if own == [slash] && !self.pod.owns(&real) {
            return Err(StepError::Refused(format!(
                "refusing {path}: a symlink on the way leads to /{}, a directory of this host the step may only read, not one of its own",
                real.display()
            )));
        }
        let mut out = root.join(real);
        if let Some(last) = last {
            out.push(last);
        }
        Ok(out)
    }

    fn repository(&self) -> Repository {
        self.plan.repository_for(self.template)
    }

    /// The drivers the step's outputs (and archived log) will be saved with.
    pub(crate) fn output_drivers(&self) -> std::collections::BTreeSet<String> {
        self.plan.output_drivers(self.template)
    }

    /// Loads every bound input. Returns the first failure. The loads run in
    /// parallel into the step's staging; placing them at their paths runs
    /// outermost path first, so an input inside another's path (`/in/a/b/c`
    /// in `/in/a`) is never placed before the outer one, which would replace
    /// it, and its path is resolved in the tree the outer one made.
    pub(crate) async fn load_inputs(&self, inputs: &[BoundArtifact]) -> (Result<(), StepError>, Vec<ArtifactRecord>) {
        let fetched = futures::future::join_all(inputs.iter().map(|b| self.fetch_input(b))).await;
        let mut fetched: Vec<Option<Result<Fetched, StepError>>> = fetched.into_iter().map(Some).collect();
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| Path::new(&inputs[i].decl.path).components().count());
        let mut records = Vec::new();
        let mut first = Ok(());
        for i in order {
            let Some(result) = fetched[i].take() else { continue };
            let placed = match result {
                Ok(f) => self.place_input(&inputs[i], f).await,
                Err(e) => Err(e),
            };
            match placed {
                Ok(Some(rec)) => records.push(rec),
                Ok(None) => {}
                Err(e) if first.is_ok() => first = Err(e),
                Err(_) => {}
            }
        }
        (first, records)
    }

    /// Loads one input and unpacks it in the step's staging.
    async fn fetch_input(&self, b: &BoundArtifact) -> Result<Fetched, StepError> {
        let name = &b.decl.name;
        let Some(value) = &b.value else { return Ok(Fetched::Nothing) };
        if b.decl.path.is_empty() {
            return Err(StepError::Required { at: format!("inputs.artifacts.{name}.path") });
        }
        if let Some(raw) = &value.raw {
            return Ok(Fetched::Raw(raw.clone()));
        }
        let Some(location) = &value.location else { return Ok(Fetched::Nothing) };
        let stage = staging(self.pod, "in", name);
        let unpacked = staging(self.pod, "unpacked", name);
        for path in [&stage, &unpacked] {
            let _ = std::fs::remove_dir_all(path);
            let _ = std::fs::remove_file(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(StepError::io("creating", parent))?;
            }
        }
        let at = location.to_client();
        let loaded = self.drivers.call_at("load", location, |c| {
            let (at, stage) = (at.clone(), stage.clone());
            async move { c.load(&at, &stage).await }
        });
        match loaded.await {
            Ok(()) => {
                crate::telemetry::moved_path(&location.driver, crate::telemetry::Direction::Download, &stage).await
            }
            Err(e) if e.kind() == ErrorKind::NotFound && b.decl.optional => {
                append_log(
                    self.pod,
                    &format!("optional input artifact {name} not found at {}: skipped\n", location.key),
                );
                return Ok(Fetched::Nothing);
            }
            Err(source) => {
                let context = format!("artifact {name} failed to load from {} key {:?}", location.driver, location.key);
                return Err(StepError::Driver { context, source });
            }
        }
        let declared = value.archive.or(b.decl.strategy());
        let dest = unpacked.clone();
        blocking(move || {
            let archive = |source| StepError::Archive { context: String::new(), source };
            let limits = archive::Limits::from_env().map_err(archive)?;
            let done = archive::unpack(&stage, &dest, declared, &limits).map_err(archive);
            if done.is_err() {
                let _ = std::fs::remove_file(&stage);
            }
            done
        })
        .await
        .map_err(|e| e.within(format!("artifact {name}")))?;
        let record = ArtifactRecord {
            node: self.node,
            name: name.clone(),
            direction: Direction::Input,
            location: location.clone(),
            gc: GcStrategy::Never,
            deleted: false,
            error: None,
        };
        Ok(Fetched::Staged(unpacked, record))
    }

    /// Puts a fetched input at its path, replacing what is there.
    async fn place_input(&self, b: &BoundArtifact, fetched: Fetched) -> Result<Option<ArtifactRecord>, StepError> {
        let name = &b.decl.name;
        if matches!(fetched, Fetched::Nothing) {
            return Ok(None);
        }
        let host = self.inside_step(&b.decl.path, false).map_err(|e| e.within(format!("input artifact {name}")))?;
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent).map_err(StepError::io("creating", parent))?;
        }
        let dest = host.clone();
        let record = blocking(move || {
            // Never written through: what is there (a link an outer input
            // brought, say) is replaced, not followed.
            if std::fs::symlink_metadata(&dest).is_ok() {
                std::fs::remove_dir_all(&dest)
                    .or_else(|_| std::fs::remove_file(&dest))
                    .map_err(StepError::io("replacing", &dest))?;
            }
            match fetched {
                Fetched::Nothing => Ok(None),
                Fetched::Raw(raw) => {
                    std::fs::write(&dest, raw).map_err(StepError::io("writing", &dest))?;
                    Ok(None)
                }
                Fetched::Staged(unpacked, record) => {
                    std::fs::rename(&unpacked, &dest).map_err(StepError::io("renaming into", &dest))?;
                    Ok(Some(record))
                }
            }
        })
        .await
        .map_err(|e| e.within(format!("artifact {name}")))?;
        apply_mode(&host, &b.decl)?;
        Ok(record)
    }

    /// Reads output parameters and saves output artifacts. A missing output
    /// is only an error when the step succeeded (and the output is not
    /// optional): a failed step's missing files are a symptom, not news.
    pub(crate) async fn save_outputs(&self, succeeded: bool, outputs: &mut Outputs) -> Saved {
        let mut saved = Saved::default();
        let fail = |saved: &mut Saved, e: StepError| {
            if succeeded && saved.error.is_none() {
                saved.error = Some(e);
            }
        };
        for p in &self.template.outputs.parameters {
            let value = match &p.value_from {
                Some(vf) if !vf.path.is_empty() => {
                    let host = self.runtime.host_path(self.pod, &vf.path);
                    match std::fs::read_to_string(&host) {
                        Ok(v) => Some(v.strip_suffix('\n').unwrap_or(&v).to_string()),
                        Err(_) => match &vf.default {
                            Some(d) => Some(d.0.clone()),
                            None => {
                                fail(
                                    &mut saved,
                                    StepError::invalid(
                                        format!("output parameter {}", p.name),
                                        format!("file {} was not written", vf.path),
                                    ),
                                );
                                None
                            }
                        },
                    }
                }
                _ => p.value.as_ref().map(|v| v.0.clone()),
            };
            if let Some(v) = value {
                if !p.global_name.is_empty() {
                    saved.globals.push((p.global_name.clone(), v.clone()));
                }
                outputs.parameters.insert(p.name.clone(), v);
            }
        }
        let repo = self.repository();
        let saves = self.template.outputs.artifacts.iter().map(|a| self.save_one(a, &repo));
        for r in futures::future::join_all(saves).await {
            match r {
                Ok(Some((name, value, record))) => {
                    let global =
                        self.template.outputs.artifacts.iter().find(|a| a.name == name).map(|a| &a.global_name);
                    if let Some(global) = global.filter(|g| !g.is_empty()) {
                        saved.global_artifacts.push((global.clone(), value.clone()));
                    }
                    outputs.artifacts.insert(name, value);
                    saved.records.push(record);
                }
                Ok(None) => {}
                Err(e) => fail(&mut saved, e),
            }
        }
        if self.plan.archives_logs(&repo) {
            let log = Artifact { name: "main-logs".into(), path: String::new(), ..Default::default() };
            match self.save_file(&log, &self.pod.log, Strategy::None, &repo, "main.log").await {
                Ok((value, record)) => {
                    outputs.artifacts.insert(log.name, value);
                    saved.records.push(record);
                }
                Err(e) => fail(&mut saved, e),
            }
        }
        saved
    }

    async fn save_one(
        &self,
        a: &Artifact,
        repo: &Repository,
    ) -> Result<Option<(String, ArtifactValue, ArtifactRecord)>, StepError> {
        if a.path.is_empty() {
            return Err(StepError::Required { at: format!("outputs.artifacts.{}.path", a.name) });
        }
        let declared = self.runtime.host_path(self.pod, &a.path);
        let host = self.inside_step(&a.path, true).map_err(|e| e.within(format!("output artifact {}", a.name)))?;
        if !host.exists() {
            if a.optional {
                return Ok(None);
            }
            return Err(StepError::invalid(
                format!("output artifact {}", a.name),
                format!("{} does not exist", a.path),
            ));
        }
        let strategy = a.strategy().unwrap_or(Strategy::Tar { level: None });
        // Named after the declared path, even when a link inside the step led elsewhere.
        let file_name = strategy.file_name(&a.name, &declared);
        let (value, record) = self.save_file(a, &host, strategy, repo, &file_name).await?;
        Ok(Some((a.name.clone(), value, record)))
    }

    async fn save_file(
        &self,
        a: &Artifact,
        host: &Path,
        strategy: Strategy,
        repo: &Repository,
        file_name: &str,
    ) -> Result<(ArtifactValue, ArtifactRecord), StepError> {
        let name = &a.name;
        let key_format = || -> Result<String, StepError> {
            let prefix = (self.vars.substitute(&repo.location.key))
                .map_err(|e| StepError::invalid(format!("keyFormat of {}", repo.source), e))?;
            Ok(format!("{}/{file_name}", prefix.trim_end_matches('/')))
        };
        let location = match declared(a) {
            Declared::Full(loc) if !loc.key.is_empty() => loc,
            Declared::Full(loc) => Location { key: key_format()?, ..loc },
            Declared::KeyOnly(key) if !key.is_empty() => Location { key, ..repo.location.clone() },
            Declared::KeyOnly(_) | Declared::Nothing => Location { key: key_format()?, ..repo.location.clone() },
        };
        let upload = if strategy == Strategy::None {
            host.to_path_buf()
        } else {
            let staged = staging(self.pod, "out", file_name);
            let (src, dst) = (host.to_path_buf(), staged.clone());
            blocking(move || {
                if let Some(parent) = dst.parent() {
                    std::fs::create_dir_all(parent).map_err(StepError::io("creating", parent))?;
                }
                archive::pack(&src, &dst, strategy)
                    .map_err(|source| StepError::Archive { context: String::new(), source })
            })
            .await
            .map_err(|e| e.within(format!("output artifact {name}")))?;
            staged
        };
        // GC deletes what the run saved: a directory (`archive: none`) as
        // `key/`, anything else as exactly one object, never `key/…` it did
        // not write. The record's key carries the difference to the driver.
        let saved_directory = upload.is_dir();
        let at = location.to_client();
        let save = self.drivers.call_at("save", &location, |c| {
            let (at, upload) = (at.clone(), upload.clone());
            async move { c.save(&at, &upload).await }
        });
        save.await.map_err(|source| {
            let context =
                format!("output artifact {name} failed to save to {} key {:?}", location.driver, location.key);
            StepError::Driver { context, source }
        })?;
        crate::telemetry::moved_path(&location.driver, crate::telemetry::Direction::Upload, &upload).await;
        if upload != host {
            let _ = std::fs::remove_file(&upload);
        }
        let gc = match a.artifact_gc.as_ref().map(|g| g.strategy) {
            Some(s) if s != GcStrategy::Unset => s,
            _ => self.plan.spec.artifact_gc.as_ref().map(|g| g.strategy).unwrap_or(GcStrategy::Never),
        };
        let value = ArtifactValue { location: Some(location.clone()), raw: None, archive: Some(strategy) };
        let record = ArtifactRecord {
            node: self.node,
            name: name.clone(),
            direction: Direction::Output,
            location: Location { key: gc_key(&location.key, saved_directory), ..location },
            gc: if gc == GcStrategy::Unset { GcStrategy::Never } else { gc },
            deleted: false,
            error: None,
        };
        Ok((value, record))
    }
}

/// The key GC deletes for an output stored at `key`: `key/` for a saved
/// directory (every object under it), the bare key for one object.
fn gc_key(key: &str, directory: bool) -> String {
    let bare = key.trim_end_matches('/');
    if directory { format!("{bare}/") } else { bare.to_string() }
}

fn apply_mode(path: &Path, a: &Artifact) -> Result<(), StepError> {
    use std::os::unix::fs::PermissionsExt;
    let Some(mode) = a.mode else { return Ok(()) };
    let set = |p: &Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(StepError::io("chmod", p))
    };
    if a.recurse_mode && path.is_dir() {
        for entry in walkdir::WalkDir::new(path).contents_first(true) {
            let entry = entry?;
            if !entry.path_is_symlink() {
                set(entry.path())?;
            }
        }
        Ok(())
    } else {
        set(path)
    }
}

fn append_log(pod: &PodSpec, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&pod.log) {
        let _ = f.write_all(line.as_bytes());
    }
}
