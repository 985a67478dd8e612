//! Argo's custom Prometheus metrics (`metrics.prometheus` of a workflow and
//! of its templates), emitted when a node or the run ends and written in the
//! Prometheus text format to `$FERRY_HOME/metrics/<run>.prom`, a directory a
//! node_exporter textfile collector (or any scraper of files) reads. Each
//! series also carries `workflow="<run>"`, so the files of several runs never
//! hold the same series twice. The format is a few lines of text; a client
//! library would add a registry this file does not need.

use ferry_workflow::expr;
use ferry_workflow::model::{Metrics, PrometheusMetric};
use ferry_workflow::vars::Vars;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// The metrics of one run, and where they are written.
pub(crate) struct RunMetrics {
    path: PathBuf,
    run: String,
    families: Mutex<BTreeMap<String, Family>>,
}

/// One metric: its help, type and series by label text.
struct Family {
    help: String,
    series: BTreeMap<String, Sample>,
}

enum Sample {
    Gauge(f64),
    Counter(f64),
    Histogram { bounds: Vec<f64>, counts: Vec<u64>, sum: f64, count: u64 },
}

impl Sample {
    fn kind(&self) -> &'static str {
        match self {
            Sample::Gauge(_) => "gauge",
            Sample::Counter(_) => "counter",
            Sample::Histogram { .. } => "histogram",
        }
    }
}

impl RunMetrics {
    pub(crate) fn new(path: PathBuf, run: &str) -> RunMetrics {
        RunMetrics { path, run: run.to_string(), families: Mutex::new(BTreeMap::new()) }
    }

    /// Emits each metric of `metrics` whose `when` holds, its labels and
    /// value substituted from `vars`, then rewrites the file. A metric that
    /// cannot be emitted is skipped and said why (as Argo logs it).
    pub(crate) fn emit(&self, metrics: &Metrics, vars: &Vars) -> Vec<String> {
        let mut problems = Vec::new();
        {
            let mut families = self.families.lock();
            for m in &metrics.prometheus {
                if let Err(why) = self.record(&mut families, m, vars) {
                    problems.push(format!("metric {}: {why}", m.name));
                }
            }
        }
        if let Err(e) = self.write() {
            problems.push(format!("writing {}: {e}", self.path.display()));
        }
        problems
    }

    fn record(&self, families: &mut BTreeMap<String, Family>, m: &PrometheusMetric, vars: &Vars) -> Result<(), String> {
        let text = |s: &str| vars.substitute(s).map_err(|e| e.to_string());
        let when = text(&m.when)?;
        if !when.trim().is_empty() && !expr::evaluate_when(&when).map_err(|e| format!("when: {e}"))? {
            return Ok(());
        }
        let mut labels: Vec<(String, String)> = vec![("workflow".into(), self.run.clone())];
        for l in &m.labels {
            labels.push((l.key.clone(), text(&l.value)?));
        }
        let labels = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(",");
        let number = |s: &str| -> Result<f64, String> {
            let v = text(s)?;
            v.trim().parse::<f64>().map_err(|_| format!("value {v:?} is not a number"))
        };
        let family =
            families.entry(m.name.clone()).or_insert_with(|| Family { help: m.help.clone(), series: BTreeMap::new() });
        if let Some(g) = &m.gauge {
            let v = number(&g.value)?;
            let entry = family.series.entry(labels).or_insert(Sample::Gauge(0.0));
            if let Sample::Gauge(current) = entry {
                *current = match g.operation.as_deref().unwrap_or("Set") {
                    "Add" => *current + v,
                    "Sub" => *current - v,
                    _ => v,
                };
            }
        } else if let Some(c) = &m.counter {
            let v = number(&c.value)?;
            if let Sample::Counter(total) = family.series.entry(labels).or_insert(Sample::Counter(0.0)) {
                *total += v;
            }
        } else if let Some(h) = &m.histogram {
            let v = number(&h.value)?;
            let bounds: Vec<f64> = h.buckets.iter().filter_map(|b| b.0.trim().parse().ok()).collect();
            let empty = Sample::Histogram { counts: vec![0; bounds.len()], bounds, sum: 0.0, count: 0 };
            if let Sample::Histogram { bounds, counts, sum, count } = family.series.entry(labels).or_insert(empty) {
                for (bound, n) in bounds.iter().zip(counts.iter_mut()) {
                    if v <= *bound {
                        *n += 1;
                    }
                }
                *sum += v;
                *count += 1;
            }
        }
        Ok(())
    }

    /// Rewrites the file whole, through a temporary file, so a scrape never
    /// reads half of it.
    fn write(&self) -> std::io::Result<()> {
        let mut out = String::new();
        for (name, family) in self.families.lock().iter() {
            let Some(kind) = family.series.values().next().map(Sample::kind) else { continue };
            let _ = writeln!(out, "# HELP {name} {}", family.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, sample) in &family.series {
                match sample {
                    Sample::Gauge(v) | Sample::Counter(v) => {
                        let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    }
                    Sample::Histogram { bounds, counts, sum, count } => {
                        for (bound, n) in bounds.iter().zip(counts) {
                            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
                        }
                        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
                        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
                        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
                    }
                }
            }
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let partial = self.path.with_extension("prom.partial");
        std::fs::write(&partial, out)?;
        std::fs::rename(&partial, &self.path)
    }
}

/// A label value as the text format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
