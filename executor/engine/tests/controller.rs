//! The controller's decisions, without processes or servers: runs go through
//! `Home` as the CLI's do, with a scripted in-process runtime
//! (`controller/fake_runtime.rs`) and a real ferry-sdk driver over an
//! in-memory object store served in this process (`controller/memory_driver.rs`).
//! Each test asserts what the controller decided: which pods ran, how often,
//! in what order and how many at once, the phases and messages of the nodes
//! and the run, and the objects stored.

#[path = "controller/fake_runtime.rs"]
mod fake_runtime;
#[path = "controller/harness.rs"]
mod harness;
#[path = "controller/memory_driver.rs"]
mod memory_driver;

use fake_runtime::{FakeRuntime, Record, Script};
use ferry_engine::{Direction, NodeKind};
use ferry_workflow::values::Phase;
use harness::{Harness, UNATTACHED, WF};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The run whose first argument is `arg` (templates here pass `{{node.name}}`).
fn run_with_arg(h: &Harness, arg: &str) -> Record {
    let runs = h.runtime.runs();
    runs.iter().find(|r| r.argv.get(1).is_some_and(|a| a == arg)).cloned().unwrap_or_else(|| {
        panic!("no run with argument {arg:?}; runs: {:?}", runs.iter().map(|r| &r.argv).collect::<Vec<_>>())
    })
}

/// The first arguments of a template's runs, sorted.
fn args_of(h: &Harness, template: &str) -> Vec<String> {
    let mut args: Vec<String> = h.runtime.runs_of(template).iter().map(|r| r.argv[1].clone()).collect();
    args.sort();
    args
}

// ---- DAG scheduling -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_task_starts_only_after_every_task_it_depends_on_has_ended() {
    let h = Harness::new(
        FakeRuntime::new(WF)
            .on("work", |_| Script::ok().takes(ms(30)))
            .on("pair", |_| Script::ok().gathers(2).takes(ms(30))),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: d, template: work, dependencies: [b, c]}
      - {name: b, template: pair, dependencies: [a]}
      - {name: c, template: pair, depends: a}
      - {name: a, template: work}
  - name: work
    container: {image: fake, command: [work], args: ["{{node.name}}"]}
  - name: pair
    container: {image: fake, command: [pair], args: ["{{node.name}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(h.runtime.runs().len(), 4);
    let [a, b, c, d] = ["wf.a", "wf.b", "wf.c", "wf.d"].map(|n| run_with_arg(&h, n));
    assert!(b.started >= a.end() && c.started >= a.end(), "b and c waited for a");
    assert!(d.started >= b.end().max(c.end()), "d waited for b and c");
    assert!(b.started < c.end() && c.started < b.end(), "b and c, independent of each other, ran side by side");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_depends_expression_runs_the_handler_of_a_failure_and_omits_the_task_that_wanted_success() {
    let h = Harness::new(FakeRuntime::new(WF).on("fails", |_| Script::exits(1)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: fails}
      - {name: on-failure, template: work, depends: a.Failed}
      - {name: on-success, template: work, depends: a.Succeeded}
      - {name: after, template: work, depends: "on-failure || on-success"}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: work
    container: {image: fake, command: [work], args: ["{{node.name}}"]}
"#,
        )
        .await;
    assert_eq!(args_of(&h, "work"), ["wf.after", "wf.on-failure"]);
    let omitted = ran.node("wf.on-success");
    assert_eq!(omitted.phase, Phase::Omitted);
    assert!(omitted.message.starts_with("omitted: depends condition not met"), "{}", omitted.message);
    assert_eq!(ran.node("wf.a").phase, Phase::Failed);
    // A failure that a task ran to handle does not fail the DAG.
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_never_runs_more_tasks_at_once_than_its_parallelism() {
    // Runs pair up (0 and 1, 2 and 3, ...): a limit of 2 lets exactly two
    // overlap; no limit would let all six.
    let h =
        Harness::new(FakeRuntime::new(WF).on("work", |run| Script::ok().gathers((run.nth / 2 + 1) * 2).takes(ms(20))));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  parallelism: 10
  templates:
  - name: main
    parallelism: 2
    dag:
      tasks:
      - {name: t1, template: work}
      - {name: t2, template: work}
      - {name: t3, template: work}
      - {name: t4, template: work}
      - {name: t5, template: work}
      - {name: t6, template: work}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(h.runtime.runs().len(), 6);
    assert_eq!(h.runtime.max_concurrent(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_parallelism_caps_the_pods_of_the_whole_run() {
    let h = Harness::new(FakeRuntime::new(WF).on("work", |_| Script::ok().takes(ms(30))));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  parallelism: 1
  templates:
  - name: main
    steps:
    - - {name: loop, template: work, withItems: [1, 2, 3]}
      - {name: other, template: work}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(h.runtime.runs().len(), 4);
    assert_eq!(h.runtime.max_concurrent(), 1);
}

// ---- failFast ---------------------------------------------------------------

const FAIL_FAST_DAG: &str = r#"
  - name: fails
    container: {image: fake, command: [fails]}
  - name: slow
    container: {image: fake, command: [slow]}
  - name: work
    container: {image: fake, command: [work]}
"#;

fn fail_fast_runtime() -> FakeRuntime {
    FakeRuntime::new(WF).on("fails", |_| Script::exits(1)).on("slow", |_| Script::ok().takes(ms(150)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dag_task_stops_scheduling_under_fail_fast() {
    let h = Harness::new(fail_fast_runtime());
    let body = format!(
        r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: a, template: fails}}
      - {{name: b, template: slow}}
      - {{name: c, template: work, dependencies: [b]}}
{FAIL_FAST_DAG}"#
    );
    let ran = h.run(&body).await;
    assert_eq!(h.runtime.runs_of("slow").len(), 1, "a running task is let finish");
    assert!(h.runtime.runs_of("work").is_empty(), "nothing starts after the failure");
    assert!(!ran.has("wf.c"));
    assert_eq!(ran.node("wf.b").phase, Phase::Succeeded);
    assert_eq!((ran.phase(), ran.message()), (Phase::Failed, "task a Failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fail_fast_a_dag_still_runs_what_does_not_depend_on_the_failure() {
    let h = Harness::new(fail_fast_runtime());
    let body = format!(
        r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      failFast: false
      tasks:
      - {{name: a, template: fails}}
      - {{name: b, template: slow}}
      - {{name: c, template: work, dependencies: [b]}}
      - {{name: d, template: work, dependencies: [a]}}
{FAIL_FAST_DAG}"#
    );
    let ran = h.run(&body).await;
    assert_eq!(h.runtime.runs_of("work").len(), 1, "c runs, d (which needs a) does not");
    assert_eq!(ran.node("wf.c").phase, Phase::Succeeded);
    assert_eq!(ran.node("wf.d").phase, Phase::Omitted);
    assert_eq!((ran.phase(), ran.message()), (Phase::Failed, "task a Failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_loop_item_stops_the_remaining_items_under_fail_fast() {
    let h = Harness::new(
        FakeRuntime::new(WF).on("maybe", |run| if run.arg(0) == "1" { Script::exits(1) } else { Script::ok() }),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    parallelism: 1
    steps:
    - - name: loop
        template: maybe
        arguments: {parameters: [{name: n, value: "{{item}}"}]}
        withItems: [1, 2, 3]
  - name: maybe
    inputs: {parameters: [{name: n}]}
    container: {image: fake, command: [maybe], args: ["{{inputs.parameters.n}}"]}
"#,
        )
        .await;
    assert_eq!(args_of(&h, "maybe"), ["1"]);
    assert_eq!(ran.node("wf[0].loop(0:1)").phase, Phase::Failed);
    assert!(!ran.has("wf[0].loop(1:2)") && !ran.has("wf[0].loop(2:3)"));
    assert_eq!(ran.phase(), Phase::Failed);
}

// ---- continueOn -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_on_failed_lets_the_next_steps_run_and_the_run_succeed() {
    let h = Harness::new(FakeRuntime::new(WF).on("fails", |_| Script::exits(2)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: fails, continueOn: {failed: true}}
    - - {name: b, template: work}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    assert_eq!(ran.node("wf[0].a").phase, Phase::Failed);
    assert_eq!(ran.node("wf[0].a").message, "Error (exit code 2)");
    assert_eq!(h.runtime.runs_of("work").len(), 1);
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_on_error_covers_errors_but_not_failures() {
    let h = Harness::new(
        FakeRuntime::new(WF).on("broken", |_| Script::cannot_run("no such image")).on("fails", |_| Script::exits(1)),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: x, template: broken, continueOn: {error: true}}
    - - {name: y, template: fails, continueOn: {error: true}}
    - - {name: z, template: work}
  - name: broken
    container: {image: fake, command: [broken]}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    assert_eq!((ran.node("wf[0].x").phase, ran.node("wf[0].x").message.as_str()), (Phase::Error, "no such image"));
    assert_eq!(ran.node("wf[1].y").phase, Phase::Failed);
    assert!(h.runtime.runs_of("work").is_empty(), "a failure is not an error: z never runs");
    assert_eq!((ran.phase(), ran.message()), (Phase::Failed, "step y Failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_task_continued_on_failure_lets_its_dependents_run_and_the_dag_succeed() {
    let h = Harness::new(FakeRuntime::new(WF).on("fails", |_| Script::exits(1)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: fails, continueOn: {failed: true}}
      - {name: b, template: work, dependencies: [a]}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    assert_eq!(ran.node("wf.a").phase, Phase::Failed);
    assert_eq!(ran.node("wf.b").phase, Phase::Succeeded);
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
}

// ---- retries and backoff ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_step_runs_until_it_succeeds_within_its_limit() {
    let h = Harness::new(
        FakeRuntime::new(WF).on("flaky", |run| if run.nth < 2 { Script::exits(1) } else { Script::ok().prints("ok") }),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: f, template: flaky}
  - name: flaky
    retryStrategy: {limit: 3}
    container: {image: fake, command: [flaky], args: ["{{retries}}"]}
"#,
        )
        .await;
    assert_eq!(args_of(&h, "flaky"), ["0", "1", "2"], "{{{{retries}}}} counts the attempts");
    assert_eq!(ran.node("wf.f").kind, NodeKind::Retry);
    assert_eq!(ran.phases(&["wf.f(0)", "wf.f(1)", "wf.f(2)"]), [Phase::Failed, Phase::Failed, Phase::Succeeded]);
    assert!(!ran.has("wf.f(3)"));
    assert_eq!(
        ran.node("wf.f").outputs.result.as_deref(),
        Some("ok"),
        "the retry node carries the last attempt's outputs"
    );
    assert_eq!(ran.phase(), Phase::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_keeps_failing_stops_at_the_retry_limit() {
    let h = Harness::new(FakeRuntime::new(WF).on("flaky", |_| Script::exits(1)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: f, template: flaky}
  - name: flaky
    retryStrategy: {limit: "2"}
    container: {image: fake, command: [flaky]}
"#,
        )
        .await;
    assert_eq!(h.runtime.runs_of("flaky").len(), 3, "the first attempt and two retries");
    let retry = ran.node("wf[0].f");
    assert_eq!((retry.phase, retry.message.as_str()), (Phase::Failed, "Error (exit code 1) (no more retries left)"));
    assert_eq!(ran.phase(), Phase::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_policy_decides_which_ends_are_retried() {
    let h = Harness::new(
        FakeRuntime::new(WF)
            .on("fail-on-error", |_| Script::exits(1))
            .on("error-on-error", |_| Script::cannot_run("runtime down"))
            .on("error-on-failure", |_| Script::cannot_run("runtime down"))
            .on("fail-always", |_| Script::exits(1)),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      failFast: false
      tasks:
      - {name: a, template: fail-on-error}
      - {name: b, template: error-on-error}
      - {name: c, template: error-on-failure}
      - {name: d, template: fail-always}
  - name: fail-on-error
    retryStrategy: {limit: 1, retryPolicy: OnError}
    container: {image: fake, command: [x]}
  - name: error-on-error
    retryStrategy: {limit: 1, retryPolicy: OnError}
    container: {image: fake, command: [x]}
  - name: error-on-failure
    retryStrategy: {limit: 1}
    container: {image: fake, command: [x]}
  - name: fail-always
    retryStrategy: {limit: 1, retryPolicy: Always}
    container: {image: fake, command: [x]}
"#,
        )
        .await;
    let runs = |t: &str| h.runtime.runs_of(t).len();
    assert_eq!(runs("fail-on-error"), 1, "OnError does not retry a failure");
    assert_eq!(runs("error-on-error"), 2, "OnError retries an error");
    assert_eq!(runs("error-on-failure"), 1, "OnFailure (the default) does not retry an error");
    assert_eq!(runs("fail-always"), 2, "Always retries a failure");
    assert_eq!(
        ran.phases(&["wf.a", "wf.b", "wf.c", "wf.d"]),
        [Phase::Failed, Phase::Error, Phase::Error, Phase::Failed]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_waits_grow_by_the_factor_and_stop_at_the_cap() {
    let h = Harness::new(FakeRuntime::new(WF).on("flaky", |_| Script::exits(1)));
    h.run(
        r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: f, template: flaky}
  - name: flaky
    retryStrategy:
      limit: 2
      backoff: {duration: 50ms, factor: 4, cap: 120ms}
    container: {image: fake, command: [flaky]}
"#,
    )
    .await;
    let runs = h.runtime.runs_of("flaky");
    assert_eq!(runs.len(), 3);
    let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1].started - w[0].end()).collect();
    // 50 ms, then 50 × 4 = 200 ms capped at 120 ms.
    assert!(gaps[0] >= ms(50) && gaps[0] < ms(120), "first wait {:?}", gaps[0]);
    assert!(gaps[1] >= ms(120) && gaps[1] < ms(200), "second wait {:?}", gaps[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_max_duration_ends_the_retries_before_the_limit() {
    let h = Harness::new(FakeRuntime::new(WF).on("flaky", |_| Script::exits(1)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: f, template: flaky}
  - name: flaky
    retryStrategy:
      limit: 10
      backoff: {duration: 100ms, maxDuration: 190ms}
    container: {image: fake, command: [flaky]}
"#,
        )
        .await;
    // The second wait would end past 190 ms after the first attempt.
    assert_eq!(h.runtime.runs_of("flaky").len(), 2);
    assert!(ran.node("wf[0].f").message.ends_with("(backoff maxDuration reached)"), "{}", ran.node("wf[0].f").message);
}

// ---- deadlines --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_past_its_template_deadline_fails_as_exceeding_it() {
    let h = Harness::new(FakeRuntime::new(WF).on("slow", |_| Script::ok().takes(Duration::from_secs(5))));
    // The executor reads activeDeadlineSeconds as whole seconds or a Go
    // duration, so a test need not wait a whole second.
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: s, template: slow}
  - name: slow
    activeDeadlineSeconds: 100ms
    container: {image: fake, command: [slow]}
"#,
        )
        .await;
    let run = &h.runtime.runs_of("slow")[0];
    assert_eq!(run.deadline, Some(ms(100)), "the pod is handed its deadline");
    assert!(run.end() - run.started < Duration::from_secs(1));
    let node = ran.node("wf[0].s");
    assert_eq!((node.phase, node.message.as_str()), (Phase::Failed, "Step exceeded its deadline"));
    assert_eq!(ran.phase(), Phase::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_past_its_deadline_stops_its_running_task_and_starts_no_more() {
    let h = Harness::new(FakeRuntime::new(WF).on("slow", |_| Script::ok().takes(Duration::from_secs(5))));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    activeDeadlineSeconds: 150ms
    dag:
      tasks:
      - {name: a, template: slow}
      - {name: b, template: work, dependencies: [a]}
  - name: slow
    container: {image: fake, command: [slow]}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    let run = &h.runtime.runs_of("slow")[0];
    assert_eq!(run.deadline, None, "the DAG's deadline is not the pod's own");
    assert!(run.end() - run.started < Duration::from_secs(1), "stopped at the DAG's deadline");
    assert!(h.runtime.runs_of("work").is_empty());
    assert_eq!(ran.node("wf.a").message, "Step exceeded its deadline");
    assert_eq!(ran.node(WF).phase, Phase::Failed);
    assert_eq!(ran.phase(), Phase::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_the_workflow_deadline_fails_with_argos_message_and_still_runs_its_exit_handler() {
    let h = Harness::new(FakeRuntime::new(WF).on("slow", |_| Script::ok().takes(Duration::from_secs(10))));
    // spec.activeDeadlineSeconds is whole seconds: this test takes one.
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  activeDeadlineSeconds: 1
  onExit: report
  templates:
  - name: main
    steps:
    - - {name: s, template: slow}
  - name: slow
    container: {image: fake, command: [slow]}
  - name: report
    container: {image: fake, command: [report], args: ["{{workflow.status}}"]}
"#,
        )
        .await;
    let run = &h.runtime.runs_of("slow")[0];
    let took = run.end() - run.started;
    assert!(took >= ms(900) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!((ran.phase(), ran.message()), (Phase::Failed, "Max duration limit exceeded"));
    assert_eq!(args_of(&h, "report"), ["Failed"]);
}

// ---- loops --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_items_runs_a_pod_per_item_and_aggregates_their_outputs_in_item_order() {
    // All three start, then the first item finishes last: finishing order
    // is not item order.
    let h = Harness::new(FakeRuntime::new(WF).on("echo", |run| {
        let item = run.arg(0).to_string();
        let takes = match item.as_str() {
            "c" => ms(80),
            "a" => ms(40),
            _ => ms(0),
        };
        Script::ok().gathers(3).takes(takes).prints(format!("{item}\n")).writes("/tmp/upper", item.to_uppercase())
    }));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  parallelism: 10
  templates:
  - name: main
    steps:
    - - name: gen
        template: echo
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withItems: [c, a, b]
    - - name: collect
        template: collect
        arguments:
          parameters:
          - {name: results, value: "{{steps.gen.outputs.result}}"}
          - {name: uppers, value: "{{steps.gen.outputs.parameters.upper}}"}
  - name: echo
    inputs: {parameters: [{name: v}]}
    container: {image: fake, command: [echo], args: ["{{inputs.parameters.v}}"]}
    outputs: {parameters: [{name: upper, valueFrom: {path: /tmp/upper}}]}
  - name: collect
    inputs: {parameters: [{name: results}, {name: uppers}]}
    container: {image: fake, command: [collect], args: ["{{inputs.parameters.results}}", "{{inputs.parameters.uppers}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(h.runtime.runs_of("echo").len(), 3);
    assert_eq!(h.runtime.max_concurrent(), 3, "items run side by side");
    for child in ["wf[0].gen(0:c)", "wf[0].gen(1:a)", "wf[0].gen(2:b)"] {
        assert_eq!(ran.node(child).phase, Phase::Succeeded);
    }
    let collect = &h.runtime.runs_of("collect")[0];
    assert_eq!(collect.argv[1..], [r#"["c","a","b"]"#, r#"["C","A","B"]"#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_param_loops_over_the_json_list_an_earlier_step_printed() {
    let h = Harness::new(FakeRuntime::new(WF).on("list", |_| Script::ok().prints(r#"["x", "y"]"#)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: list, template: list}
    - - name: each
        template: work
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withParam: "{{steps.list.outputs.result}}"
  - name: list
    container: {image: fake, command: [list]}
  - name: work
    inputs: {parameters: [{name: v}]}
    container: {image: fake, command: [work], args: ["{{inputs.parameters.v}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(args_of(&h, "work"), ["x", "y"]);
    assert!(ran.has("wf[1].each(0:x)") && ran.has("wf[1].each(1:y)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sequence_makes_a_task_group_from_start_to_end_in_the_format() {
    let h = Harness::new(FakeRuntime::new(WF));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: seq
        template: work
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withSequence: {start: "3", end: "5", format: "n%02d"}
  - name: work
    inputs: {parameters: [{name: v}]}
    container: {image: fake, command: [work], args: ["{{inputs.parameters.v}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(args_of(&h, "work"), ["n03", "n04", "n05"]);
    assert_eq!(ran.node("wf.seq").kind, NodeKind::TaskGroup);
    assert_eq!(ran.node("wf.seq(2:n05)").parent, Some(ran.node("wf.seq").id));
}

// ---- exit handlers ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_handler_runs_after_a_failure_and_sees_the_workflow_status() {
    let h = Harness::new(FakeRuntime::new(WF).on("fails", |_| Script::exits(1).takes(ms(30))));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  onExit: report
  templates:
  - name: main
    steps:
    - - {name: breaks, template: fails}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: report
    container: {image: fake, command: [report], args: ["{{workflow.status}}", "{{workflow.failures}}"]}
"#,
        )
        .await;
    let report = &h.runtime.runs_of("report")[0];
    assert!(report.started >= h.runtime.runs_of("fails")[0].end(), "the handler runs after the workflow");
    assert_eq!(report.argv[1], "Failed");
    // As Argo lists them: every Failed or Errored node, the root and the step group too.
    let failures: serde_json::Value = serde_json::from_str(&report.argv[2]).unwrap();
    let listed: Vec<(&str, &str)> = failures
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["displayName"].as_str().unwrap(), f["templateName"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("wf", "main"), ("[0]", "main"), ("breaks", "fails")], "{failures}");
    assert_eq!(ran.node("wf.onExit").phase, Phase::Succeeded);
    assert_eq!((ran.phase(), ran.message()), (Phase::Failed, "step breaks Failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_exit_handler_fails_a_run_that_had_succeeded() {
    let h = Harness::new(FakeRuntime::new(WF).on("report", |_| Script::exits(3)));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  onExit: report
  templates:
  - name: main
    steps:
    - - {name: ok, template: work}
  - name: work
    container: {image: fake, command: [work]}
  - name: report
    container: {image: fake, command: [report], args: ["{{workflow.status}}"]}
"#,
        )
        .await;
    assert_eq!(args_of(&h, "report"), ["Succeeded"]);
    assert_eq!((ran.phase(), ran.message()), (Phase::Failed, "exit handler failed: Error (exit code 3)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_exit_hook_runs_after_its_step_whatever_its_outcome() {
    let h = Harness::new(FakeRuntime::new(WF).on("fails", |_| Script::exits(1).takes(ms(30))));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: fails, onExit: cleanup, continueOn: {failed: true}}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: cleanup
    container: {image: fake, command: [cleanup]}
"#,
        )
        .await;
    let cleanup = &h.runtime.runs_of("cleanup");
    assert_eq!(cleanup.len(), 1);
    assert!(cleanup[0].started >= h.runtime.runs_of("fails")[0].end());
    assert_eq!(ran.node("wf[0].a.onExit").phase, Phase::Succeeded);
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_hooks_run_on_their_expression_and_the_exit_hook_reads_the_steps_outputs() {
    let h = Harness::new(
        FakeRuntime::new(WF)
            .on("produce", |_| Script::ok().writes("/tmp/out", "forty-two").takes(ms(30)))
            .on("fails", |_| Script::exits(1).takes(ms(10))),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: a
        template: produce
        hooks:
          exit:
            template: report
            arguments: {parameters: [{name: m, value: "exit {{steps.a.status}} {{steps.a.outputs.parameters.p}}"}]}
          started:
            expression: steps.a.status == "Running"
            template: report
            arguments: {parameters: [{name: m, value: "started"}]}
          done:
            expression: steps["a"].status == "Succeeded"
            template: report
            arguments: {parameters: [{name: m, value: "done {{steps.a.outputs.parameters.p}}"}]}
          failed:
            expression: steps.a.status == "Failed"
            template: report
            arguments: {parameters: [{name: m, value: "never"}]}
    - - name: b
        template: fails
        continueOn: {failed: true}
        hooks:
          failed:
            expression: steps.b.status == "Failed"
            template: report
            arguments: {parameters: [{name: m, value: "b failed"}]}
  - name: produce
    outputs: {parameters: [{name: p, valueFrom: {path: /tmp/out}}]}
    container: {image: fake, command: [produce]}
  - name: fails
    container: {image: fake, command: [fails]}
  - name: report
    inputs: {parameters: [{name: m}]}
    container: {image: fake, command: [report], args: ["{{inputs.parameters.m}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(args_of(&h, "report"), ["b failed", "done forty-two", "exit Succeeded forty-two", "started"]);
    for node in ["wf[0].a.onExit", "wf[0].a.hooks.started", "wf[0].a.hooks.done", "wf[1].b.hooks.failed"] {
        assert_eq!(ran.node(node).phase, Phase::Succeeded, "{node}");
    }
    assert!(!ran.has("wf[0].a.hooks.failed"), "a hook whose expression never held does not run");
    let (started, produce) = (run_with_arg(&h, "started"), &h.runtime.runs_of("produce")[0]);
    assert!(started.started < produce.end(), "the Running hook ran while its step ran");
    assert!(run_with_arg(&h, "exit Succeeded forty-two").started >= produce.end(), "the exit hook after it");
    assert!(
        h.runtime.runs_of("fails")[0].started >= run_with_arg(&h, "done forty-two").end(),
        "b waited for a's hooks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_hooks_run_while_the_run_runs_and_hooks_exit_is_its_exit_handler() {
    let h = Harness::new(FakeRuntime::new(WF).on("work", |_| Script::ok().takes(ms(30))));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  hooks:
    exit:
      template: report
      arguments: {parameters: [{name: m, value: "exit {{workflow.status}}"}]}
    running:
      expression: workflow.status == "Running"
      template: report
      arguments: {parameters: [{name: m, value: "running"}]}
    never:
      expression: workflow.status == "Failed"
      template: report
      arguments: {parameters: [{name: m, value: "never"}]}
  templates:
  - name: main
    steps:
    - - {name: a, template: work}
  - name: work
    container: {image: fake, command: [work]}
  - name: report
    inputs: {parameters: [{name: m}]}
    container: {image: fake, command: [report], args: ["{{inputs.parameters.m}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(args_of(&h, "report"), ["exit Succeeded", "running"]);
    assert_eq!(ran.node("wf.hooks.running").phase, Phase::Succeeded);
    assert_eq!(ran.node("wf.onExit").phase, Phase::Succeeded);
    assert!(!ran.has("wf.hooks.never"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_target_runs_only_the_targets_and_what_they_depend_on() {
    let h = Harness::new(FakeRuntime::new(WF).on("work", |_| Script::ok()));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  arguments: {parameters: [{name: target, value: "E D"}]}
  templates:
  - name: main
    dag:
      target: "{{workflow.parameters.target}}"
      tasks:
      - {name: A, template: work}
      - {name: B, template: work, depends: A}
      - {name: C, template: work, dependencies: [A]}
      - {name: D, template: work, depends: B}
      - {name: E, template: work, depends: C}
      - {name: F, template: work, depends: E}
      - {name: G, template: work}
  - name: work
    container: {image: fake, command: [work], args: ["{{node.name}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(args_of(&h, "work"), ["wf.A", "wf.B", "wf.C", "wf.D", "wf.E"]);
    assert!(!ran.has("wf.F") && !ran.has("wf.G"), "tasks outside the target get no node");
    let h = Harness::new(FakeRuntime::new(WF).on("work", |_| Script::ok()));
    let wrong = h
        .run(
            r#"
spec:
  entrypoint: main
  arguments: {parameters: [{name: target, value: "Z"}]}
  templates:
  - name: main
    dag:
      target: "{{workflow.parameters.target}}"
      tasks:
      - {name: A, template: work}
  - name: work
    container: {image: fake, command: [work]}
"#,
        )
        .await;
    assert_eq!(wrong.phase(), Phase::Error);
    assert!(wrong.message().contains("target \"Z\" is not a task of this DAG"), "{}", wrong.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_serves_the_steps_after_it_and_stops_when_its_template_ends() {
    let h = Harness::new(
        FakeRuntime::new(WF).on("daemon", |_| Script::ok().takes(Duration::from_secs(30))).on("work", |_| Script::ok()),
    );
    let started = std::time::Instant::now();
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: inner, template: inner}
    - - {name: later, template: work}
  - name: inner
    steps:
    - - {name: d, template: daemon}
    - - name: use
        template: work
        arguments: {parameters: [{name: at, value: "{{steps.d.ip}}"}]}
  - name: daemon
    daemon: true
    container: {image: fake, command: [daemon]}
  - name: work
    inputs: {parameters: [{name: at, default: none}]}
    container: {image: fake, command: [work], args: ["{{node.name}}", "{{inputs.parameters.at}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert!(started.elapsed() < Duration::from_secs(20), "the run waited for the daemon to end by itself");
    let daemon = &h.runtime.runs_of("daemon")[0];
    let (used, later) = (run_with_arg(&h, "wf[0].inner[1].use"), run_with_arg(&h, "wf[1].later"));
    assert_eq!(used.argv[2], "127.0.0.1", "{{steps.d.ip}} is the daemon's address");
    assert!(used.started >= daemon.started && used.started < daemon.end(), "the step used the running daemon");
    assert!(daemon.end() <= later.started, "the daemon stopped when its template ended, before the next step");
    assert_eq!(ran.node("wf[0].inner[0].d").phase, Phase::Succeeded);
}

// ---- artifacts through the driver ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_artifacts_reach_the_next_step_through_the_driver() {
    let h = Harness::new(
        FakeRuntime::new(WF)
            .on("produce", |_| Script::ok().writes("/tmp/plain.txt", "hello").writes("/tmp/packed/inner.txt", "packed"))
            .on("consume", |run| {
                Script::ok().prints(format!("{}|{}", run.read("/in/plain.txt"), run.read("/in/packed/inner.txt")))
            }),
    );
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: produce, template: produce}
    - - name: consume
        template: consume
        arguments:
          artifacts:
          - {name: plain, from: "{{steps.produce.outputs.artifacts.plain}}"}
          - {name: packed, from: "{{steps.produce.outputs.artifacts.packed}}"}
  - name: produce
    container: {image: fake, command: [produce]}
    outputs:
      artifacts:
      - {name: plain, path: /tmp/plain.txt, archive: {none: {}}}
      - {name: packed, path: /tmp/packed}
  - name: consume
    inputs:
      artifacts:
      - {name: plain, path: /in/plain.txt}
      - {name: packed, path: /in/packed}
    container: {image: fake, command: [consume]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    assert_eq!(ran.node("wf[1].consume").outputs.result.as_deref(), Some("hello|packed"));
    let pod = ferry_workflow::naming::pod_name(WF, "produce", "wf[0].produce");
    let objects = h.driver.objects().await;
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [format!("wf/{pod}/packed.tgz"), format!("wf/{pod}/plain.txt")]);
    assert_eq!(objects[1].1, b"hello", "archive: none stores the file as it is");
    assert_eq!(objects[0].1[..2], [0x1f, 0x8b], "the default archive is a gzipped tar");
    let records = h.home.store().artifacts(ran.finished.workflow.id).unwrap();
    let count = |d: Direction| records.iter().filter(|r| r.direction == d).count();
    assert_eq!((count(Direction::Output), count(Direction::Input)), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_output_the_step_did_not_write_errors_the_step() {
    let h = Harness::new(FakeRuntime::new(WF));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: s, template: produce}
  - name: produce
    container: {image: fake, command: [produce]}
    outputs:
      artifacts:
      - {name: out, path: /tmp/missing.txt}
"#,
        )
        .await;
    let node = ran.node("wf[0].s");
    assert_eq!(
        (node.phase, node.message.as_str()),
        (Phase::Error, "output artifact out: /tmp/missing.txt does not exist")
    );
    assert!(h.driver.objects().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_on_a_registered_driver_that_nothing_serves_errors_the_step() {
    let h = Harness::new(FakeRuntime::new(WF).on("produce", |_| Script::ok().writes("/tmp/out.txt", "x")));
    let ran = h
        .run(&format!(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {{name: s, template: produce}}
  - name: produce
    container: {{image: fake, command: [produce]}}
    outputs:
      artifacts:
      - name: out
        path: /tmp/out.txt
        plugin: {{name: {UNATTACHED}, configuration: "x: 1", key: out.txt}}
"#
        ))
        .await;
    let node = ran.node("wf[0].s");
    assert_eq!(node.phase, Phase::Error);
    assert!(
        node.message.contains(&format!(
            "artifact driver \"{UNATTACHED}\" did not start: not among the attached drivers (memory)"
        )),
        "{}",
        node.message
    );
    assert!(h.driver.objects().await.is_empty());
}

// ---- resume from a recorded state ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_dag_reruns_only_the_tasks_that_had_not_finished() {
    // The first run of `slow` would take 10 s; it is interrupted instead.
    let h = Harness::new(
        FakeRuntime::new(WF)
            .on("slow", |run| if run.nth == 0 { Script::ok().takes(Duration::from_secs(10)) } else { Script::ok() }),
    );
    let body = r#"
spec:
  entrypoint: main
  onExit: report
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: work}
      - {name: b, template: slow, dependencies: [a]}
      - {name: c, template: work, dependencies: [b]}
  - name: slow
    container: {image: fake, command: [slow]}
  - name: work
    container: {image: fake, command: [work]}
  - name: report
    container: {image: fake, command: [report], args: ["{{workflow.status}}"]}
"#;
    let interrupt = CancellationToken::new();
    let stop = async {
        h.runtime.wait_started("slow", 1).await;
        interrupt.cancel();
    };
    let (first, ()) = tokio::join!(h.run_until(body, interrupt.clone()), stop);
    assert_eq!(first.phase(), Phase::Running, "an interrupted run is not finished");
    assert_eq!(first.node("wf.a").phase, Phase::Succeeded);
    assert!(!first.node("wf.b").phase.is_done());
    assert!(!first.has("wf.c"));
    assert!(h.runtime.runs_of("report").is_empty(), "an interrupted run has not ended: no exit handler yet");

    let second = h.resume().await;
    assert_eq!(second.phase(), Phase::Succeeded, "{}", second.message());
    assert_eq!(h.runtime.pod_runs("work", "wf.a"), 1, "a finished before: reused, not re-run");
    assert_eq!(h.runtime.pod_runs("slow", "wf.b"), 2, "b was cut short: run again");
    assert_eq!(h.runtime.pod_runs("work", "wf.c"), 1);
    assert_eq!(args_of(&h, "report"), ["Succeeded"], "the exit handler runs once, at the real end");
    assert_eq!(h.runtime.runs().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_steps_run_reuses_the_outputs_of_finished_steps() {
    let h = Harness::new(
        FakeRuntime::new(WF)
            .on("gen", |run| Script::ok().prints(format!("gen-run-{}", run.nth)))
            .on("slow", |run| if run.nth == 0 { Script::ok().takes(Duration::from_secs(10)) } else { Script::ok() }),
    );
    let body = r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, template: gen}
    - - {name: pause, template: slow}
    - - name: use
        template: use
        arguments: {parameters: [{name: v, value: "{{steps.gen.outputs.result}}"}]}
  - name: gen
    container: {image: fake, command: [gen]}
  - name: slow
    container: {image: fake, command: [slow]}
  - name: use
    inputs: {parameters: [{name: v}]}
    container: {image: fake, command: [use], args: ["{{inputs.parameters.v}}"]}
"#;
    let interrupt = CancellationToken::new();
    let stop = async {
        h.runtime.wait_started("slow", 1).await;
        interrupt.cancel();
    };
    let (first, ()) = tokio::join!(h.run_until(body, interrupt.clone()), stop);
    assert_eq!(first.phase(), Phase::Running);

    let second = h.resume().await;
    assert_eq!(second.phase(), Phase::Succeeded, "{}", second.message());
    assert_eq!(h.runtime.runs_of("gen").len(), 1);
    assert_eq!(h.runtime.runs_of("slow").len(), 2);
    assert_eq!(args_of(&h, "use"), ["gen-run-0"], "the stored output of the first run's gen");
}

// ---- inline templates -----------------------------------------------------

/// Inline pods have no template name: the fake runtime records them under "",
/// and they are told apart here by their command.
fn inline_runs(h: &Harness, command: &str) -> Vec<Record> {
    h.runtime.runs_of("").into_iter().filter(|r| r.argv[0] == command).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looped_inline_template_retries_each_item_as_a_named_one_would() {
    // Each item's first attempt fails; its retry succeeds and prints the item.
    let h =
        Harness::new(FakeRuntime::new(WF).on("", |run| {
            if run.arg(1) == "0" { Script::exits(1) } else { Script::ok().prints(run.arg(0).to_string()) }
        }));
    let ran = h
        .run(
            r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: f
        withItems: [a, b]
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        inline:
          inputs: {parameters: [{name: v}]}
          retryStrategy: {limit: 2}
          container: {image: fake, command: [flaky], args: ["{{inputs.parameters.v}}", "{{retries}}"]}
    - - name: gather
        arguments: {parameters: [{name: all, value: "{{steps.f.outputs.result}}"}]}
        inline:
          inputs: {parameters: [{name: all}]}
          container: {image: fake, command: [gather], args: ["{{inputs.parameters.all}}"]}
"#,
        )
        .await;
    assert_eq!(ran.phase(), Phase::Succeeded, "{}", ran.message());
    let mut attempts: Vec<String> = inline_runs(&h, "flaky").iter().map(|r| r.argv[1..].join(" ")).collect();
    attempts.sort();
    assert_eq!(attempts, ["a 0", "a 1", "b 0", "b 1"]);
    for item in ["wf[0].f(0:a)", "wf[0].f(1:b)"] {
        let retry = ran.node(item);
        assert_eq!((retry.kind, retry.template.as_str()), (NodeKind::Retry, ""), "{item}");
        assert_eq!(ran.phases(&[&format!("{item}(0)"), &format!("{item}(1)")]), [Phase::Failed, Phase::Succeeded]);
        assert_eq!(h.runtime.pod_runs("", &format!("{item}(1)")), 1, "the pod is named <wf>-<hash>");
    }
    assert_eq!(inline_runs(&h, "gather")[0].argv[1], r#"["a","b"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_reuses_finished_inline_steps_from_the_stored_plan() {
    let h = Harness::new(FakeRuntime::new(WF).on("", |run| match run.argv[0].as_str() {
        "gen" => Script::ok().prints(format!("gen-run-{}", run.nth)),
        // The first run of `slow` would take 10 s; it is interrupted instead.
        "slow" if run.nth == 1 => Script::ok().takes(Duration::from_secs(10)),
        _ => Script::ok(),
    }));
    let body = r#"
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: gen, inline: {container: {image: fake, command: [gen]}}}
    - - {name: pause, inline: {container: {image: fake, command: [slow]}}}
    - - name: use
        arguments: {parameters: [{name: v, value: "{{steps.gen.outputs.result}}"}]}
        inline:
          inputs: {parameters: [{name: v}]}
          container: {image: fake, command: [use], args: ["{{inputs.parameters.v}}"]}
"#;
    let interrupt = CancellationToken::new();
    let stop = async {
        h.runtime.wait_started("", 2).await;
        interrupt.cancel();
    };
    let (first, ()) = tokio::join!(h.run_until(body, interrupt.clone()), stop);
    assert_eq!(first.phase(), Phase::Running);
    assert_eq!(first.node("wf[0].gen").phase, Phase::Succeeded);
    let second = h.resume().await;
    assert_eq!(second.phase(), Phase::Succeeded, "{}", second.message());
    assert_eq!(inline_runs(&h, "gen").len(), 1, "a finished inline step is not run again");
    assert_eq!(inline_runs(&h, "slow").len(), 2, "the interrupted one is");
    assert_eq!(inline_runs(&h, "use")[0].argv[1], "gen-run-0", "with the stored step's outputs");
}
