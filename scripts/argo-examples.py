#!/usr/bin/env python3
"""Run Argo Workflows' own example workflows through ferry and classify each one.

Usage:
    scripts/argo-examples.py EXAMPLES_DIR [--ferry PATH] [--csv OUT.csv]
                             [--timeout 60] [--only NAME ...] [--merge] [--keep-homes]

EXAMPLES_DIR holds the top-level `examples/*.yaml` of argoproj/argo-workflows
(only that directory's own *.yaml files are used, not its subdirectories).
Get them without copying them into this repository, e.g.

    git --git-dir=ARGO_MIRROR archive HEAD examples | tar -x -C /tmp/argo-ex

For each file, one at a time, with a fresh FERRY_HOME (a temporary directory):
`ferry lint FILE`, then, if lint passes, `ferry run --output json FILE` with a
timeout (60 s unless --timeout). Each file lands in one class:

  pass       the run ended as Argo would end it (the EXPECT table below:
             Succeeded, or Failed for examples meant to fail) and the output
             checks that table holds for it hold
  refused    ferry said no: lint or load rejected the file, or the local
             runtime refused a step (a node in Error whose message says the
             local runtime cannot do it). Grouped into a category taken from
             the error text (its first line, the field name)
  host-only  the example needs what this host has not: the internet, a
             cluster, a credentialed bucket, Windows, a tool (exit code 127,
             command not found). Decided from the run (exit 127, artifact
             driver network errors) and from the EXPECT table's `needs`
  wrong      ran to an end Argo would not give (phase differs from EXPECT, or
             an output check failed) with nothing host-related to blame
  timeout    still running after the timeout (the EXPECT table says when
             that is expected, e.g. forever.yaml)

A `review` column flags results that pass but deserve a human look (e.g. an
example whose output depends on the container image: the local runtime runs
the command on this host, so `cat /etc/os-release` prints the host's).

Prints a summary (counts per class, refusals per category, and the files
classed wrong/timeout/host-only with a reason) and writes a per-file CSV to
--csv. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

# ---------------------------------------------------------------------------
# Output checks: each takes the `ferry run --output json` document and returns
# None when it holds, else a short description of what is off.
# ---------------------------------------------------------------------------

Check = Callable[[dict], Optional[str]]


def _split_name(name: str) -> list[str]:
    """Split a node name on the dots outside (...) and [...] (loop items may hold dots)."""
    parts, depth, cur = [], 0, []
    for ch in name:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if ch == "." and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def step_name(node: dict) -> str:
    """The step/task name of a node: its last name segment, without the loop item `(i:...)`
    and without a trailing group index `[n]`."""
    last = _split_name(node.get("name", ""))[-1]
    last = re.sub(r"\(\d+:.*\)$", "", last)
    last = re.sub(r"(\[\d+\])+$", "", last)
    return last


RAN = {"Succeeded", "Failed", "Error"}


def pods(doc: dict, *, template: str | None = None, step: str | None = None) -> list[dict]:
    out = []
    for n in doc.get("nodes", []):
        if n.get("kind") != "Pod":
            continue
        if template is not None and n.get("template") != template:
            continue
        if step is not None and step_name(n) != step:
            continue
        out.append(n)
    return out


def _result(n: dict) -> str:
    return str((n.get("outputs") or {}).get("result", "")).strip()


def results(template: str, expected: list[str] | set[str], *, exact: bool = True) -> Check:
    """The results of the Pods of `template`: as a multiset equal to `expected` (exact), or a superset."""

    def check(doc: dict) -> Optional[str]:
        got = sorted(_result(n) for n in pods(doc, template=template) if n.get("phase") in RAN)
        want = sorted(expected)
        if exact and got != want:
            return f"{template} results {got!r}, want {want!r}"
        if not exact and not collections.Counter(want) <= collections.Counter(got):
            return f"{template} results {got!r}, want at least {want!r}"
        return None

    return check


def result_contains(template: str, *needles: str) -> Check:
    def check(doc: dict) -> Optional[str]:
        ran = [n for n in pods(doc, template=template) if n.get("phase") in RAN]
        if not ran:
            return f"{template} did not run"
        text = "\n".join(_result(n) for n in ran)
        missing = [s for s in needles if s not in text]
        return f"{template} output lacks {missing!r} (got {text[:120]!r})" if missing else None

    return check


def ran(*, template: str | None = None, step: str | None = None, count: int | None = None,
        phase: str | None = None) -> Check:
    """Pods of that template/step ran (ended Succeeded/Failed/Error), `count` of them if given."""

    def check(doc: dict) -> Optional[str]:
        nodes = [n for n in pods(doc, template=template, step=step) if n.get("phase") in RAN]
        what = template or step
        if count is None and not nodes:
            return f"{what} did not run"
        if count is not None and len(nodes) != count:
            return f"{what} ran {len(nodes)} times, want {count}"
        if phase and any(n.get("phase") != phase for n in nodes):
            return f"{what} phases {[n.get('phase') for n in nodes]}, want {phase}"
        return None

    return check


def not_ran(*, template: str | None = None, step: str | None = None) -> Check:
    def check(doc: dict) -> Optional[str]:
        nodes = [n for n in pods(doc, template=template, step=step) if n.get("phase") in RAN]
        return f"{template or step} ran but should not have" if nodes else None

    return check


def param(template: str, name: str, value: str) -> Check:
    def check(doc: dict) -> Optional[str]:
        for n in pods(doc, template=template):
            got = ((n.get("outputs") or {}).get("parameters") or {}).get(name)
            if got is not None:
                return None if str(got).strip() == value else f"{template}.{name}={got!r}, want {value!r}"
        return f"{template} has no output parameter {name}"

    return check


def exactly_one_of(*templates: str) -> Check:
    def check(doc: dict) -> Optional[str]:
        counts = {t: len([n for n in pods(doc, template=t) if n.get("phase") in RAN]) for t in templates}
        return None if sum(counts.values()) == 1 else f"want exactly one of {counts}"

    return check


def coin_matches() -> Check:
    """The branch that ran (template heads or tails) is the one flip-coin printed."""

    def check(doc: dict) -> Optional[str]:
        flips = [_result(n) for n in pods(doc, template="flip-coin")]
        if len(flips) != 1 or flips[0] not in {"heads", "tails"}:
            return f"flip-coin printed {flips!r}"
        other = "tails" if flips[0] == "heads" else "heads"
        if not [n for n in pods(doc, template=flips[0]) if n.get("phase") in RAN]:
            return f"flip said {flips[0]} but {flips[0]} did not run"
        if [n for n in pods(doc, template=other) if n.get("phase") in RAN]:
            return f"flip said {flips[0]} but {other} ran"
        return None

    return check


def duration_at_least(seconds: float) -> Check:
    def check(doc: dict) -> Optional[str]:
        wf = doc.get("workflow", {})
        if not wf.get("created") or not wf.get("finished"):
            return None
        took = (wf["finished"] - wf["created"]) / 1000
        return None if took >= seconds else f"took {took:.1f}s, Argo needs at least {seconds}s (limit not honoured?)"

    return check


def duration_at_most(seconds: float) -> Check:
    def check(doc: dict) -> Optional[str]:
        wf = doc.get("workflow", {})
        if not wf.get("created") or not wf.get("finished"):
            return None
        took = (wf["finished"] - wf["created"]) / 1000
        return None if took <= seconds else f"took {took:.1f}s, want at most {seconds}s (deadline not honoured?)"

    return check


def scripts_print() -> Check:
    """scripts-*.yaml: print-message says `result was: <what gen-random-int printed>`."""

    def check(doc: dict) -> Optional[str]:
        gen = [_result(n) for n in pods(doc, template="gen-random-int")]
        out = [_result(n) for n in pods(doc, template="print-message")]
        if not gen or not out:
            return "a step did not run"
        return None if out[0] == f"result was: {gen[0]}" else f"printed {out[0]!r}, generated {gen[0]!r}"

    return check


def recursive_loop() -> Check:
    def check(doc: dict) -> Optional[str]:
        got = sorted(int(_result(n)) for n in pods(doc, template="counter-iteration") if _result(n).isdigit())
        return None if got == list(range(1, 11)) else f"counter-iteration results {got}, want 1..10"

    return check


def argo_sequence_len(start: int, end: int) -> int:
    """How many items Argo's withSequence {start, end} gives (end inclusive, counting down when start > end)."""
    return abs(end - start) + 1


def withsequence_nested() -> Check:
    """hello-b loops over 1..N (N: hello-a's result), and each iteration's hello-c over 1..M (M: its hello-b)."""

    def check(doc: dict) -> Optional[str]:
        nodes = doc.get("nodes", [])
        a = pods(doc, step="hello-a")
        if len(a) != 1 or not _result(a[0]).isdigit():
            return "hello-a did not print a number"
        iters = [n for n in nodes if n.get("kind") != "Pod" and n.get("template") == "hello-hello"
                 and re.search(r"\.hello-b\(\d+:[^)]*\)$", n.get("name", ""))]
        want = argo_sequence_len(1, int(_result(a[0])))
        if len(iters) != want:
            return f"{len(iters)} hello-b iterations, want {want} (hello-a printed {_result(a[0])})"
        for it in iters:
            base = it["name"]
            b = [n for n in nodes if n.get("kind") == "Pod" and n["name"].startswith(base + "[0].hello-b")]
            c = [n for n in nodes if n.get("kind") == "Pod" and n["name"].startswith(base + "[1].hello-c(")]
            if len(b) != 1 or not _result(b[0]).isdigit():
                return f"{base}: inner hello-b did not print a number"
            w = argo_sequence_len(1, int(_result(b[0])))
            if len(c) != w:
                return f"{base}: {len(c)} hello-c iterations, want {w} (hello-b printed {_result(b[0])})"
        return None

    return check


# ---------------------------------------------------------------------------
# The expectation table: how Argo ends each example, and why.
#
# Anchor: Argo's own e2e test (test/e2e/examples_test.go) submits every
# example without the label `workflows.argoproj.io/no-test` and requires it to
# Succeed; labelled ones are skipped ("expected-failure", "environment",
# "flaky", "duration"). An example not listed here is therefore expected to
# Succeed and to need nothing special. The entries below were decided by
# reading each file (reasoning in `why`).
#
# phase:  "Succeeded" | "Failed" | "Error" | "any" (random outcome)
# needs:  what the example needs from its environment (None: any host)
# checks: output checks, see above
# long:   the example runs longer than the timeout even on Argo
# review: a note that makes a pass worth a human look
# soft:   checks whose failure is not `wrong` but a review note (Argo's own outcome is timing-dependent)
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class E:
    phase: str = "Succeeded"
    why: str = ""
    needs: Optional[str] = None
    checks: tuple = ()
    long: bool = False
    review: Optional[str] = None
    soft: tuple = ()  # checks whose failure only asks for a review (racy on Argo too)


NET = "network"
CLUSTER = "cluster"

EXPECT: dict[str, E] = {
    # --- plain successes with output checks --------------------------------
    "hello-world.yaml": E(checks=(results("hello-world", ["hello world"]),)),
    "archive-location.yaml": E(checks=(results("hello-world", ["hello world"]),)),
    "gc-ttl.yaml": E(checks=(results("hello-world", ["hello world"]),), why="ttlStrategy only deletes the finished workflow"),
    "title-and-description-with-markdown.yaml": E(checks=(results("hello-world", ["hello world"]),)),
    "pod-spec-patch.yaml": E(checks=(results("hello-world", ["hello world"]),), review="podSpecPatch (cpu limit) has no local effect"),
    "arguments-parameters.yaml": E(checks=(results("print-message", ["hello world"]),)),
    "global-parameters.yaml": E(checks=(results("print-message", ["hello world"]),)),
    "pod-metadata.yaml": E(checks=(results("print-message", ["hello1"]),)),
    "pod-metadata-wf-field.yaml": E(checks=(results("print-message", ["hello1"]),)),
    "steps.yaml": E(checks=(results("print-message", ["hello1", "hello2a", "hello2b"]),)),
    "loops.yaml": E(checks=(results("print-message", ["hello world", "goodbye world"]),)),
    "loops-dag.yaml": E(why="labelled environment (image allow-list in Argo's CI), nothing special here",
                        checks=(results("print-message", ["A", "foo", "bar", "baz", "C"]),)),
    "loops-sequence.yaml": E(
        why="labelled environment in Argo's CI only; withSequence semantics: count from 0, end inclusive, counts down when start > end, printf format",
        checks=(results("echo", ["0", "1", "2", "3", "4", "100", "101", "102", "103", "104", "105",
                                 "200", "201", "202", "5", "4", "3", "2", "1", "0",
                                 "testuser00", "testuser01", "testuser02", "testuser03", "testuser04"]),)),
    "dag-diamond.yaml": E(checks=(results("echo", ["A", "B", "C", "D"]),)),
    "dag-multiroot.yaml": E(checks=(results("echo", ["A", "B", "C", "D"]),)),
    "dag-diamond-steps.yaml": E(checks=(results("echo", [f"{x}{i}" for x in "ABCD" for i in (1, 2, 3)]),)),
    "dag-nested.yaml": E(why="labelled flaky in Argo's CI only",
                         checks=(results("echo", [f"{x}{y}" for x in "ABCD" for y in "ABCD"]),)),
    "artifact-passing.yaml": E(checks=(results("print-message-from-file", ["hello world"]),)),
    "artifact-passing-subpath.yaml": E(checks=(result_contains("print-message-dir", "hello_world.txt"),
                                               results("print-message-from-file", ["hello world"]))),
    "artifact-path-placeholders.yaml": E(why="stdout goes through tee into wc -l > file, so the result is empty",
                                         checks=(param("head-lines", "actual-lines-count", "3"),)),
    "input-artifact-raw.yaml": E(checks=(results("raw-contents", ["this is\nthe raw file\ncontents"]),)),
    "output-parameter.yaml": E(checks=(results("print-message", ["hello world"]),)),
    "nested-workflow.yaml": E(why="labelled environment in Argo's CI only; nested steps template passing params/artifacts",
                              checks=(result_contains("consume", "input parameter value: my-output-parameter", "hello world"),
                                      ran(template="consume", count=2))),
    "parameter-aggregation.yaml": E(checks=(results("divide-by-2", ["1", "2"]), results("print-message", ["1", "2"], exact=False))),
    "parameter-aggregation-dag.yaml": E(checks=(results("divide-by-2", ["1", "2"]), results("print-message", ["1", "2"], exact=False))),
    "parameter-aggregation-script.yaml": E(checks=(results("divide-by-2", ["1", "2"]),)),
    "pod-spec-from-previous-step.yaml": E(checks=(result_contains("setup-resources-tmpl", "10Gi", "2000m"),),
                                          review="podSpecPatch (resources) has no local effect"),
    "coinflip.yaml": E(checks=(exactly_one_of("heads", "tails"), coin_matches())),
    "coinflip-recursive.yaml": E(checks=(ran(template="heads", count=1),)),
    "dag-coinflip.yaml": E(why="recursive coin flips until heads; labelled duration (can take a while)",
                           checks=(ran(template="heads", count=4),)),
    "conditional-artifacts.yaml": E(checks=(exactly_one_of("heads", "tails"), coin_matches())),
    "dag-conditional-artifacts.yaml": E(checks=(exactly_one_of("heads", "tails"), coin_matches())),
    "scripts-bash.yaml": E(checks=(scripts_print(),)),
    "scripts-python.yaml": E(checks=(scripts_print(),)),
    "scripts-javascript.yaml": E(checks=(scripts_print(),), why="needs `node` on the host (present here)"),
    "recursive-for-loop.yaml": E(why="labelled flaky in Argo's CI only", checks=(recursive_loop(),)),
    "withsequence-nested-result.yaml": E(checks=(withsequence_nested(),)),
    "exit-code-output-variable.yaml": E(why="continueOn.failed: the workflow Succeeds; exitCode is 123",
                                        checks=(results("echo-container", ["Exit code was: 123"]),)),
    "status-reference.yaml": E(why="continueOn.failed, then `when` on the step status",
                               checks=(ran(template="failed", count=1), not_ran(template="succeeded"))),
    "dag-enhanced-depends.yaml": E(
        why="C fails, but the DAG's leaves (should-execute-1, should-execute-3) succeed, so Argo's DAG Succeeds",
        checks=(ran(step="should-execute-1", count=1), ran(step="should-execute-2", count=1),
                ran(step="should-execute-3", count=1), not_ran(step="should-not-execute"))),
    "exit-handler-dag-level.yaml": E(why="labelled flaky in Argo's CI only", checks=(ran(template="exit", count=4),)),
    "handle-large-output-results.yaml": E(why="needs jq (present here); labelled flaky",
                                          checks=(results("echo", ['"a"', '"b"', '"c"']),)),
    "map-reduce.yaml": E(why="key-only s3 artifacts: needs a default artifact repository (ferry has a local one)"),
    "artifact-gc-workflow.yaml": E(why="key-only s3 artifacts: needs a default artifact repository (ferry has a local one)"),
    "volumes-pvc.yaml": E(checks=(result_contains("print-message-from-file", "hello world"),)),
    "volumes-existing.yaml": E(why="needs the PVC of testvolume.yaml in Argo; a local volume is the equivalent",
                               checks=(result_contains("print-accesslog", "accessed at"),)),
    "volumes-emptydir.yaml": E(why="the step greps /proc/mounts for its emptyDir mount at /mnt/vol"),
    "image-pull-secrets.yaml": E(why="labelled environment (needs the secret in a cluster); the echo itself needs nothing",
                                 checks=(results("hello-world", ["hello world"]),)),
    "node-selector.yaml": E(why="labelled environment; nodeSelector has no local meaning, `uname -a` runs anywhere",
                            review="nodeSelector ignored locally"),
    "loops-maps.yaml": E(why="prints /etc/os-release of four images",
                         review="local runtime runs the host's cat: prints the host's os-release 4 times, not debian/alpine/ubuntu"),
    # --- examples meant to fail --------------------------------------------
    "continue-on-fail.yaml": E(
        "Succeeded",
        why="labelled expected-failure, but C has continueOn.failed, so Argo's workflow Succeeds (step C is Failed)",
        checks=(ran(template="hello-world", count=3, phase="Succeeded"), ran(template="intentional-fail", count=1, phase="Failed"))),
    "dag-continue-on-fail.yaml": E(
        "Failed",
        why="B and E fail; G (E && F) is omitted and inherits E's failure. D (B.Failed && C) runs on Argo when it is "
            "created before G is omitted (same reconcile); once G is omitted first, failFast ends the DAG without D",
        checks=(not_ran(step="G"),),
        soft=(ran(step="D", count=1, phase="Succeeded"),)),
    "dag-disable-failFast.yaml": E(
        "Failed",
        why="C fails after its 3 retries; failFast: false lets B, D, E finish first",
        checks=(ran(template="d", count=2, phase="Succeeded"), ran(template="c", count=4, phase="Failed"))),
    "loops-arbitrary-sequential-steps.yaml": E(
        "Failed",
        why="the 4th item exits 1; parallelism 1 + failFast stop the loop there",
        checks=(ran(template="unit-step-template", count=4),)),
    "pod-gc-strategy.yaml": E("Failed", why="step `fail` exits 1 (podGC itself needs a cluster)"),
    "pod-gc-strategy-with-label-selector.yaml": E("Failed", why="step `fail` exits 1 (podGC itself needs a cluster)"),
    "timeouts-step.yaml": E("Failed", why="activeDeadlineSeconds 10 on a `sleep 1d` step",
                            checks=(duration_at_most(40),)),
    "timeouts-workflow.yaml": E("Failed", why="workflow activeDeadlineSeconds 30; `unschedulable` never gets a node",
                                checks=(duration_at_most(55),)),
    "exit-handlers.yaml": E("Failed", why="entrypoint exits 1; exit handler then runs `cry`"),
    "dag-task-level-timeout.yaml": E("Failed", why="B's 10s timeout on a 15s sleep"),
    "template-defaults.yaml": E("any", why="templateDefaults retry limit 2 on a 2/3-failing step: random"),
    "retry-conditional.yaml": E("Failed", why="the script always exits 1 or 2 and the expression retries only exit 2: "
                                "the run ends Failed, at the first exit 1 or after 10 retries"),
    "step-level-timeout.yaml": E("Failed", why="both sleeps are killed at their 10s timeout and Failed (Argo: the pod's deadline, "
                                 "'Pod was active on the node longer than the specified deadline'); sleep1's continueOn "
                                 "covers only errors, so the run fails"),
    # --- random outcome -----------------------------------------------------
    "retry-on-error.yaml": E("any", why="2 retries of a step failing 4 times in 5: random"),
    "resubmit.yaml": E("any", why="steps that fail one time in 3: random"),
    "custom-metrics.yaml": E("any", why="`flakey` fails 2 times in 3 without retries"),
    "retry-container.yaml": E(why="10 retries of a 2/3-failing step: fails ~1% of the time"),
    "retry-script.yaml": E(why="10 retries of a 2/3-failing step: fails ~1% of the time"),
    "retry-with-steps.yaml": E(why="10 retries each: fails ~3% of the time"),
    "retry-backoff.yaml": E(why="10 retries with 1,2,4,5,5.. s backoff, maxDuration 1m: ~1% failure"),
    "retry-container-to-completion.yaml": E(why="retryStrategy {} retries without limit until exit 0"),
    # --- longer than the timeout, even on Argo ------------------------------
    "forever.yaml": E(long=True, why="1000 x sleep 1s"),
    "colored-logs.yaml": E(long=True, why="99 x sleep 1s"),
    "parallelism-nested-workflow.yaml": E(long=True, why="4 sequential x 30 s sleeps = 120 s",
                                          checks=(duration_at_least(119),)),
    "parallelism-nested-dag.yaml": E(long=True, why="4 levels of 2 x 10 s sleeps, parallelism 2: ~80 s",
                                     checks=(duration_at_least(79),)),
    "loops-param-result.yaml": E(
        why="11 sleeps of 20..30 s all at once on Argo (~30 s); a local parallelism cap of 2 x CPUs stretches it",
        checks=(ran(template="sleep-n-sec", count=11),)),
    "parallelism-limit.yaml": E(why="10 x 10 s sleeps, parallelism 2: at least 50 s", checks=(duration_at_least(49),)),
    "parallelism-template-limit.yaml": E(why="10 x 10 s sleeps, template parallelism 2: at least 50 s",
                                         checks=(duration_at_least(49),)),
    "parallelism-nested.yaml": E(why="4 parallel workers x 4 sequential 10 s sleeps: at least 40 s",
                                 checks=(duration_at_least(39),)),
    # --- need the internet --------------------------------------------------
    "arguments-artifacts.yaml": E(needs=f"{NET}: http artifact from storage.googleapis.com; kubectl"),
    "input-artifact-http.yaml": E(needs=f"{NET}: http artifact from storage.googleapis.com"),
    "input-artifact-git.yaml": E(needs=f"{NET}: git clone from github.com"),
    "ci.yaml": E(needs=f"{NET}: git clone from github.com; golang image"),
    "ci-output-artifact.yaml": E(needs=f"{NET}: git clone from github.com; golang image"),
    "fun-with-gifs.yaml": E(needs=f"{NET}: aws s3 cp; tools aws, convert, gifsicle"),
    "exit-handler-slack.yaml": E(needs=f"{NET}: a Slack webhook URL (placeholder in the file)"),
    "http-hello-world.yaml": E(needs=f"{NET}: http template fetching a URL"),
    "http-success-condition.yaml": E(needs=f"{NET}: httpbin.org, google.com"),
    "life-cycle-hooks-tmpl-level.yaml": E(needs=f"{NET}: http template fetching raw.githubusercontent.com"),
    "life-cycle-hooks-wf-level.yaml": E(needs=f"{NET}: http template fetching raw.githubusercontent.com"),
    "webhdfs-input-output-artifacts.yaml": E(needs=f"{NET}: a webhdfs server and oauth secrets"),
    "input-artifact-s3.yaml": E(needs=f"{NET}: s3.amazonaws.com bucket + credential secrets"),
    "output-artifact-s3.yaml": E(needs=f"{NET}: s3.amazonaws.com bucket + credential secrets"),
    "input-artifact-gcs.yaml": E(needs=f"{NET}: GCS bucket + service-account secret"),
    "output-artifact-gcs.yaml": E(needs=f"{NET}: GCS bucket + service-account secret"),
    "input-artifact-oss.yaml": E(needs=f"{NET}: Alibaba OSS bucket + secrets"),
    "input-artifact-azure.yaml": E(needs=f"{NET}: Azure blob + secrets"),
    "output-artifact-azure.yaml": E(needs=f"{NET}: Azure blob + secrets"),
    "hdfs-artifact.yaml": E(needs=f"{NET}: an HDFS cluster"),
    "artifactory-artifact.yaml": E(needs=f"{NET}: an Artifactory server + secrets"),
    "work-avoidance.yaml": E("any", needs=f"{NET}: minio:9000 bucket + secrets", why="random failures by design"),
    "influxdb-ci.yaml": E(needs=f"{NET}: git clone, influxdb images"),
    "buildkit-template.yaml": E(needs=f"{NET}: git clone, buildkit, registry push"),
    # --- need a cluster / k8s objects ---------------------------------------
    "k8s-jobs.yaml": E(needs=f"{CLUSTER}: resource template creates a Job"),
    "k8s-orchestration.yaml": E(needs=f"{CLUSTER}: resource templates"),
    "k8s-owner-reference.yaml": E(needs=f"{CLUSTER}: resource template"),
    "k8s-patch-json-pod.yaml": E(needs=f"{CLUSTER}: resource template patches a pod"),
    "k8s-patch-json-workflow.yaml": E(needs=f"{CLUSTER}: resource template patches a workflow"),
    "k8s-patch-merge-pod.yaml": E(needs=f"{CLUSTER}: resource template"),
    "k8s-patch-pod.yaml": E(needs=f"{CLUSTER}: resource template"),
    "k8s-resource-log-selector.yaml": E(needs=f"{CLUSTER}: resource template"),
    "k8s-set-owner-reference.yaml": E(needs=f"{CLUSTER}: resource template"),
    "k8s-wait-wf.yaml": E(needs=f"{CLUSTER}: resource template waits for a workflow"),
    "resource-delete-with-flags.yaml": E(needs=f"{CLUSTER}: resource template"),
    "resource-flags.yaml": E(needs=f"{CLUSTER}: resource template"),
    "workflow-of-workflows.yaml": E(needs=f"{CLUSTER}: resource templates submit workflows"),
    "daemoned-stateful-set-with-service.yaml": E(needs=f"{CLUSTER}: resource template"),
    "sidecar-dind.yaml": E(needs=f"{CLUSTER}: privileged docker-in-docker sidecar"),
    "sidecar-nginx.yaml": E(needs="image: nginx's own file system (the host's nginx cannot write /var/log/nginx "
                                  "and /run, read-only in the step's sandbox; the main container waits for it forever)"),
    "secrets.yaml": E(needs=f"{CLUSTER}: a Kubernetes secret"),
    "arguments-parameters-from-configmap.yaml": E(needs=f"{CLUSTER}: a ConfigMap (could be passed with the workflow)"),
    "global-parameters-from-configmap.yaml": E(needs=f"{CLUSTER}: a ConfigMap (could be passed with the workflow)"),
    "global-parameters-from-configmap-referenced-as-local-variable.yaml": E(needs=f"{CLUSTER}: a ConfigMap"),
    "artifact-repository-ref.yaml": E(needs=f"{CLUSTER}: the artifact-repositories ConfigMap"),
    "synchronization-db-mutex-tmpl-level.yaml": E(needs=f"{CLUSTER}: a database-backed semaphore"),
    "synchronization-db-mutex-wf-level.yaml": E(needs=f"{CLUSTER}: a database-backed semaphore"),
    "synchronization-db-tmpl-level.yaml": E(needs=f"{CLUSTER}: a database-backed semaphore"),
    "synchronization-db-wf-level.yaml": E(needs=f"{CLUSTER}: a database-backed semaphore"),
    "synchronization-tmpl-level.yaml": E(needs=f"{CLUSTER}: a ConfigMap semaphore"),
    "synchronization-wf-level.yaml": E(needs=f"{CLUSTER}: a ConfigMap semaphore"),
    "workflow-level-executor-plugin.yaml": E(needs=f"{CLUSTER}: an executor plugin"),
    "artifact-passing-explicit-plugin.yaml": E(needs=f"{CLUSTER}: an artifact driver plugin named test"),
    "workflow-count-resourcequota.yaml": E(needs=f"{CLUSTER}: not a workflow (ResourceQuota)"),
    "testvolume.yaml": E(needs=f"{CLUSTER}: not a workflow (PVC for volumes-existing.yaml)"),
    "ci-workflowtemplate.yaml": E(needs=f"{NET}: WorkflowTemplate only (git clone, golang)"),
    "default-pdb-support.yaml": E(why="podDisruptionBudget has no local meaning"),
    "fibonacci-seq-conditional-param.yaml": E(needs=f"{CLUSTER}: memoize cache ConfigMap"),
    "memoize-simple.yaml": E(needs=f"{CLUSTER}: memoize cache ConfigMap"),
    "data-transformations.yaml": E(needs=f"{NET}: data template over an s3 bucket"),
    # --- need an OS / tool this host lacks ----------------------------------
    "hello-windows.yaml": E(needs="windows: cmd.exe in a Windows container"),
    "hello-hybrid.yaml": E(needs="windows: cmd.exe in a Windows container"),
    # --- interactive / controller-only --------------------------------------
    "suspend-template.yaml": E(long=True, why="`approve` suspends until a manual `argo resume`"),
    "suspend-template-outputs.yaml": E(long=True, why="suspend waits for a manual resume that sets its outputs"),
    "intermediate-parameters.yaml": E(long=True, needs="image tool: /argosay of argoproj/argosay:v2",
                                      why="suspend waits for a manual resume that sets parameters"),
    "synchronization-mutex-tmpl-level.yaml": E(long=True, why="5 x 50 s sleeps behind one mutex: 250 s"),
    "synchronization-mutex-wf-level.yaml": E(why="a workflow-level mutex held by one workflow"),
    "cron-workflow.yaml": E(why="CronWorkflow, scheduled by the controller"),
    "cron-when.yaml": E(why="CronWorkflow, scheduled by the controller"),
    "cron-backfill.yaml": E(why="CronWorkflow + resource template"),
    "cron-workflow-multiple-schedules.yaml": E(why="CronWorkflow, scheduled by the controller"),
    "dag-inline-cronworkflow.yaml": E(why="CronWorkflow, scheduled by the controller"),
}

# Refusal messages: the (first) error line -> a category. Order matters.
FIELD_GLOSS = {
    "resource": "needs a cluster (resource template)",
    "suspend": "suspend template",
    "daemon": "daemon templates",
    "sidecars": "sidecars",
    "initContainers": "init containers",
    "http": "http template",
    "data": "data template",
    "containerSet": "containerSet template",
    "hooks": "lifecycle hooks",
    "inline": "inline templates",
    "synchronization": "synchronization (mutex/semaphore)",
    "memoize": "memoization",
    "metrics": "prometheus metrics",
    "timeout": "template timeout",
    "configMapKeyRef": "parameter from ConfigMap",
    "templateDefaults": "templateDefaults",
}


def _where(parent_path: str) -> str:
    """The kind of object holding the unknown field, from its path (spec.templates[1] -> template)."""
    last = re.sub(r"(\[\d+\])+$", "", parent_path.split(".")[-1])
    return {"templates": "template", "steps": "step", "tasks": "task", "artifacts": "artifact",
            "parameters": "parameter", "env": "env"}.get(last, last)


def categorize(message: str) -> str:
    """A refusal category from ferry's error text (first error line)."""
    line = message.strip().splitlines()[0] if message.strip() else "(no message)"
    line = re.sub(r"^\S+?\.ya?ml:\d+: ", "", line)
    m = re.search(r"field `([^`]+)`: (\S+): unknown field `([^`]+)`", line)
    if m:
        field, parent = m.group(3), m.group(2)
        cat = f"unsupported field: {_where(parent)}.{field}"
        gloss = FIELD_GLOSS.get(field)
        return f"{cat} ({gloss})" if gloss else cat
    m = re.search(r"duplicate field `([^`]+)`", line)
    if m:
        return f"YAML: duplicate key `{m.group(1)}`"
    m = re.search(r"unsupported document .*`kind: (\w+)`", line)
    if m:
        return f"unsupported document kind: {m.group(1)}"
    if "expr-lang expression tag" in line:
        return "unsupported: expr-lang {{=...}} tag"
    m = re.search(r"regex operator `([^`]+)`", line)
    if m:
        return f"unsupported: `{m.group(1)}` in when"
    m = re.search(r"\{\{([^}]+)\}\}: unknown variable", line)
    if m:
        var = m.group(1).strip()
        var = re.sub(r"^(workflow\.outputs\.\w+)\..*", r"\1.*", var)
        var = re.sub(r"^((steps|tasks)\.)[^.]+", r"\1NAME", var)
        return f"unknown variable: {var}"
    if re.search(r"artifact driver \"[^\"]+\" is not registered", line):
        return "artifact driver not registered (plugin)"
    if re.search(r"no ConfigMap .* among the (workflow.s )?files", line):
        return "needs a companion file (ConfigMap)"
    m = re.search(r"(\w+) \"[^\"]+\" not found among the files given", line)
    if m:
        return f"needs a companion file ({m.group(1)})"
    if "no Workflow document" in line:
        return "no Workflow document (templates only)"
    if "container.command is empty" in line:
        return "local runtime: container without command (image entrypoint unknown)"
    m = re.search(r"declares a path in \S+, inside the host's (\S+):", line)
    if m:
        return f"local runtime: declared path under host {m.group(1)}"
    if "runs nothing" in line:
        return "local runtime: template runs nothing"
    # Fallback: the line with quoted and numeric specifics blanked.
    generic = re.sub(r"`[^`]*`|\"[^\"]*\"|'[^']*'", "…", line)
    generic = re.sub(r"\[\d+\]", "[]", generic)
    return generic[:90]


RUNTIME_REFUSAL = re.compile(r"local runtime|--runtime docker|runs nothing|container\.command is empty")
NETWORK_ERROR = re.compile(r"error sending request|dns error|failed to lookup address|Could not resolve host|"
                           r"Connection refused|Transport handshake failed|Network is unreachable", re.I)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclasses.dataclass
class Outcome:
    file: str
    cls: str
    category: str = ""
    phase: str = ""
    expected: str = ""
    seconds: float = 0.0
    reason: str = ""
    review: str = ""
    no_test: str = ""


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            kids[ppid].append(int(d))
        except (OSError, ValueError):
            continue
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def run_cmd(argv: list[str], env: dict, timeout: float, cwd: str) -> tuple[Optional[int], str, str, float]:
    """Run argv; on timeout stop ferry (SIGINT, then SIGTERM) and kill what it started, by pid."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        rc: Optional[int]
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
            family = descendants(proc.pid)
            for sig, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            for pid in family + descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        took = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"), took


def no_test_label(text: str) -> str:
    m = re.search(r"workflows\.argoproj\.io/no-test:\s*\"?([\w-]+)", text)
    return m.group(1) if m else ""


def missing_commands(doc: dict) -> list[str]:
    """Commands a step could not find (a Pod exited 127), from the run's step logs."""
    if not any((n.get("outputs") or {}).get("exit_code") == 127 for n in doc.get("nodes", [])):
        return []
    logs = Path(doc.get("workflow", {}).get("dir", "")) / "logs"
    text = ""
    if logs.is_dir():
        for p in sorted(logs.glob("*.log")):
            if not p.name.startswith("driver-"):
                text += p.read_text(errors="replace") + "\n"
    found = set(re.findall(r"([\w./+-]+): (?:command )?not found", text))
    found |= set(re.findall(r"(?:exec|spawn)[^\n]*?\"?([\w./+-]+)\"?: (?:No such file|executable file not found)", text))
    if not found:
        bad = [n for n in doc.get("nodes", []) if (n.get("outputs") or {}).get("exit_code") == 127]
        found = {f"the command of template {n.get('template')}" for n in bad}
    return sorted(found)


def failing_step(doc: dict) -> str:
    """`step: message | last log line` of the first failed Pod, to say why a run went wrong."""
    wf = doc.get("workflow", {})
    bad = [n for n in doc.get("nodes", []) if n.get("kind") == "Pod" and n.get("phase") in {"Failed", "Error"}]
    if not bad:
        # No Pod failed: the first other node (not a Steps/StepGroup/DAG wrapper) in Error, e.g. a `when` or loop.
        other = [n for n in doc.get("nodes", []) if n.get("phase") in {"Failed", "Error"} and n.get("message")
                 and n.get("kind") not in {"Steps", "StepGroup", "DAG", "TaskGroup"}]
        return f"{step_name(other[0])}: {other[0]['message']}" if other else wf.get("message", "")
    n = bad[0]
    text = f"{step_name(n) or n.get('template')}: {n.get('message', '')}"
    logs = Path(wf.get("dir", "")) / "logs"
    if logs.is_dir():
        for p in sorted(logs.glob(f"{wf.get('name', '')}-{n.get('template', '')}-*.log")):
            lines = [ln.strip() for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
            if lines:
                text += f" | {lines[-1]}"
                break
    return text


def phase_ok(expected: E, phase: str) -> bool:
    # A random example ends Succeeded or Failed (a step's exit code); Error means something else broke.
    return expected.phase == "any" and phase in {"Succeeded", "Failed"} or phase == expected.phase


def classify_run(name: str, exp: E, rc: Optional[int], out: str, err: str, took: float, timeout: float) -> Outcome:
    o = Outcome(name, "", expected=exp.phase, seconds=round(took, 1), review=exp.review or "")
    doc = None
    try:
        doc = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        doc = None
    err_plain = ANSI.sub("", err)
    node_msgs = " | ".join(n.get("message", "") for n in (doc or {}).get("nodes", []) if n.get("message"))

    if rc is None:
        if doc:
            o.phase = doc.get("workflow", {}).get("phase", "")
        if exp.needs and (NETWORK_ERROR.search(err_plain) or NETWORK_ERROR.search(node_msgs)):
            o.cls, o.reason = "host-only", f"{exp.needs} (driver retried until the {timeout:.0f} s timeout)"
        elif NETWORK_ERROR.search(err_plain) or NETWORK_ERROR.search(node_msgs):
            o.cls, o.reason = "host-only", f"network unreachable (driver retried until the {timeout:.0f} s timeout)"
        elif exp.needs:
            o.cls, o.reason = "host-only", f"{exp.needs} (still running after {timeout:.0f} s, waiting for it)"
        else:
            o.cls = "timeout"
            o.reason = (f"expected: {exp.why}" if exp.long else
                        f"still running after {timeout:.0f} s" + (f" ({exp.why})" if exp.why else ""))
        return o

    if doc is None:
        o.cls = "refused"
        o.category = "run: " + categorize(err_plain or out)
        o.reason = (err_plain.strip().splitlines() or ["(no output)"])[0][:200]
        return o

    wf = doc.get("workflow", {})
    o.phase = wf.get("phase", "")
    nodes = doc.get("nodes", [])

    refusals = [n for n in nodes if n.get("phase") == "Error" and RUNTIME_REFUSAL.search(n.get("message", ""))]
    if refusals:
        o.cls = "refused"
        o.category = categorize(refusals[0]["message"])
        o.reason = f"{step_name(refusals[0])}: {refusals[0]['message'][:160]}"
        return o

    missing = missing_commands(doc)
    net = [n for n in nodes if n.get("phase") in {"Error", "Failed"} and NETWORK_ERROR.search(n.get("message", ""))]
    failures = [c(doc) for c in exp.checks]
    failures = [f for f in failures if f]

    if phase_ok(exp, o.phase) and not failures:
        o.cls = "pass"
        soft = [f for f in (c(doc) for c in exp.soft) if f]
        if soft:
            o.review = "; ".join(filter(None, [o.review, "timing-dependent on Argo too: " + "; ".join(soft)]))
        if missing:
            o.review = "; ".join(filter(None, [o.review, f"command not found: {', '.join(missing)}"]))
        if exp.needs and o.phase == "Succeeded":
            o.review = "; ".join(filter(None, [o.review, f"Succeeded though it needs {exp.needs}"]))
        return o

    what = (f"phase {o.phase}, Argo gives {exp.phase}" if not phase_ok(exp, o.phase) else "; ".join(failures))
    if missing:
        o.cls, o.reason = "host-only", f"command not found: {', '.join(missing)} ({what})"
    elif net:
        o.cls, o.reason = "host-only", f"network: {net[0].get('message', '')[:120]}"
    elif exp.needs:
        o.cls, o.reason = "host-only", f"{exp.needs} ({what}; {failing_step(doc)[:120]})"
    else:
        o.cls = "wrong"
        detail = failing_step(doc)
        o.reason = what + (f" — {detail[:200]}" if detail else "") + (f" [Argo: {exp.why}]" if exp.why else "")
    return o


# Images whose entrypoint the local runtime cannot read, mapped to a program
# of this repository that behaves as that entrypoint (`ferry run --image-map`).
IMAGE_MAP = ["--image-map", f"argoproj/argosay:v2={Path(__file__).resolve().parent.parent / 'testing' / 'argosay'}"]


def run_one(path: Path, ferry: str, timeout: float, keep: bool) -> Outcome:
    name = path.name
    text = path.read_text(errors="replace")
    exp = EXPECT.get(name)
    if exp is None:
        exp = E("Failed", why="labelled expected-failure") if no_test_label(text) == "expected-failure" else E()
    home = tempfile.mkdtemp(prefix="ferry-argo-ex-")
    env = dict(os.environ, FERRY_HOME=home)
    try:
        rc, out, err, took = run_cmd([ferry, "lint", *IMAGE_MAP, str(path)], env, timeout, str(path.parent))
        if rc != 0:
            msg = ANSI.sub("", err or out)
            o = Outcome(name, "refused", category=categorize(msg), expected=exp.phase, seconds=round(took, 1),
                        reason=(msg.strip().splitlines() or ["(lint timed out)"])[0][:240])
            if rc is None:
                o.category, o.reason = "lint timed out", "ferry lint did not finish"
        else:
            rc, out, err, took = run_cmd([ferry, "run", "--output", "json", *IMAGE_MAP, str(path)], env, timeout,
                                         str(path.parent))
            o = classify_run(name, exp, rc, out, err, took, timeout)
        o.no_test = no_test_label(text)
        return o
    finally:
        if keep:
            print(f"  (kept {home})", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("examples", type=Path, help="directory of Argo example *.yaml files (top level only)")
    ap.add_argument("--ferry", default=str(Path(__file__).resolve().parent.parent / "target/debug/ferry"))
    ap.add_argument("--csv", type=Path, help="write one row per file here")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per lint and per run (default 60)")
    ap.add_argument("--only", nargs="*", default=[], help="only these file names")
    ap.add_argument("--keep-homes", action="store_true", help="keep each FERRY_HOME for inspection")
    ap.add_argument("--merge", action="store_true",
                    help="with --only and --csv: replace those files' rows in the existing CSV and summarise it all")
    args = ap.parse_args()

    files = sorted(p for p in args.examples.glob("*.yaml") if p.is_file())
    if args.only:
        files = [p for p in files if p.name in set(args.only)]
    if not files:
        print(f"no *.yaml files in {args.examples}", file=sys.stderr)
        return 2

    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    for i, p in enumerate(files, 1):
        o = run_one(p, args.ferry, args.timeout, args.keep_homes)
        outcomes.append(o)
        print(f"[{i:3}/{len(files)}] {o.cls:9} {o.seconds:6.1f}s {p.name}"
              + (f"  — {o.category}" if o.category else "")
              + (f"  — {o.reason[:110]}" if o.cls in {"wrong", "timeout", "host-only"} else ""),
              file=sys.stderr, flush=True)

    if args.merge and args.csv and args.csv.is_file():
        fresh = {o.file for o in outcomes}
        with open(args.csv, newline="") as f:
            for row in csv.DictReader(f):
                if row["file"] not in fresh:
                    row["cls"] = row.pop("class")
                    row["seconds"] = float(row["seconds"] or 0)
                    outcomes.append(Outcome(**row))
        outcomes.sort(key=lambda o: o.file)

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            fields = [fl.name for fl in dataclasses.fields(Outcome)]
            w.writerow(["class" if x == "cls" else x for x in fields])
            for o in outcomes:
                w.writerow([getattr(o, x) for x in fields])

    counts = collections.Counter(o.cls for o in outcomes)
    ran_now = len(files)
    merged = f" ({ran_now} run now, the rest from {args.csv})" if len(outcomes) > ran_now else ""
    print(f"\nArgo examples: {len(outcomes)} files{merged}, {time.monotonic() - t0:.0f} s, ferry {args.ferry}\n")
    print(f"{'class':<10} {'files':>5}")
    for cls in ("pass", "refused", "host-only", "wrong", "timeout"):
        print(f"{cls:<10} {counts.get(cls, 0):>5}")
    # What the acceptance counts: runs that end as Argo's would, and files
    # that stop only for what this host lacks (a cluster, the internet, an
    # image's own tools), as the EXPECT table says.
    needing = [o for o in outcomes if o.cls in {"refused", "host-only", "timeout"}
               and (EXPECT.get(o.file) or E()).needs]
    ok = counts.get("pass", 0) + len(needing)
    print(f"\npass {counts.get('pass', 0)} + stopped only for what they need {len(needing)} = {ok} of "
          f"{len(outcomes)}; wrong {counts.get('wrong', 0)}")
    refused = collections.Counter(o.category for o in outcomes if o.cls == "refused")
    if refused:
        print(f"\nrefused, by category ({len(refused)} categories):")
        for cat, n in refused.most_common():
            print(f"  {n:>3}  {cat}")
    for cls in ("wrong", "timeout", "host-only"):
        rows = [o for o in outcomes if o.cls == cls]
        if rows:
            print(f"\n{cls}:")
            for o in rows:
                print(f"  {o.file}: {o.reason}")
    reviews = [o for o in outcomes if o.cls == "pass" and o.review]
    if reviews:
        print("\npass, but worth a look:")
        for o in reviews:
            print(f"  {o.file}: {o.review}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
