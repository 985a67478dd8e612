"""Custom metrics as a scraper reads them: `ferry run` of
examples/workflows/metrics.yaml, then the file it wrote parsed by the
Prometheus client library's own text-format parser."""
import os
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
FERRY = os.environ.get("FERRY_BIN", str(REPO / "target" / "debug" / "ferry"))


def test_metrics_are_written_in_the_prometheus_text_format(tmp_path):
    run = subprocess.run(
        [FERRY, "--home", str(tmp_path), "run", "--name", "m", REPO / "examples" / "workflows" / "metrics.yaml"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "metrics" / "m.prom").read_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    run_label = ("workflow", "m")
    assert families["measured"].type == "counter"
    assert samples[("measured_total", (("status", "Succeeded"), run_label))] == 3
    assert families["measured_size"].type == "histogram"
    assert samples[("measured_size_bucket", (("le", "5"), run_label))] == 1
    assert samples[("measured_size_bucket", (("le", "10"), run_label))] == 2
    assert samples[("measured_size_bucket", (("le", "+Inf"), run_label))] == 3
    assert samples[("measured_size_sum", (run_label,))] == 22
    assert samples[("measured_size_count", (run_label,))] == 3
    assert 0 < samples[("measure_duration_seconds", (run_label,))] < 60
    assert 0 < samples[("run_duration_seconds", (run_label,))] < 60
    assert samples[("runs_total", (("status", "Succeeded"), run_label))] == 1
    assert families["runs"].documentation == "Runs by status"
