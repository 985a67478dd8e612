//! Values `ferry run` must give exactly as Argo gives them: the outputs of
//! loops, the outputs of steps that did not run, `{{workflow.failures}}`.

use super::{Ferry, node};

/// Runs the workflow `name` with `spec`, expecting `phase`; returns its document.
fn run_expecting(f: &Ferry, name: &str, spec: &str, phase: &str) -> serde_json::Value {
    let file = f.workflow(name, spec);
    let (_, doc) = f.run(&[&file], &[]);
    assert_eq!(doc["workflow"]["phase"], phase, "{}", serde_json::to_string_pretty(&doc).unwrap());
    doc
}

const LOOP_OUTPUTS: &str = r#"  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: gen
        template: gen
        arguments: {parameters: [{name: n, value: "{{item}}"}]}
        withItems: [1, 2, 3, 4]
        when: "{{item}} != 2 && {{item}} != 4"
    - - name: show
        template: show
        arguments:
          parameters:
          - {name: v, value: "r={{steps.gen.outputs.result}} p={{steps.gen.outputs.parameters.p}} q={{steps.gen.outputs.parameters.q}} all={{steps.gen.outputs.parameters}}"}
  - name: gen
    inputs: {parameters: [{name: n}]}
    outputs:
      parameters:
      - {name: p, valueFrom: {path: /tmp/p}}
      - {name: q, valueFrom: {path: /tmp/q}}
    script:
      image: alpine
      command: [sh]
      source: |
        printf '{"z": %s,\n "a": "x y"}\n' {{inputs.parameters.n}}
        echo '[ {{inputs.parameters.n}} ]' > /tmp/p
        echo '{{inputs.parameters.n}}' > /tmp/q
  - name: show
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.v}}"]}
"#;

const DAG_LOOP: &str = r#"  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: count
        template: echo
        arguments: {parameters: [{name: v, value: "{{item}}"}]}
        withSequence: {count: "3", start: "1"}
        when: "{{item}} != 2"
      - name: show
        depends: count
        template: echo
        arguments: {parameters: [{name: v, value: "{{tasks.count.outputs.result}}"}]}
  - name: echo
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.v}}"]}
"#;

#[test]
fn a_loops_outputs_embed_json_results_and_leave_out_skipped_iterations() {
    let f = Ferry::new();
    run_expecting(&f, "loop-outputs", LOOP_OUTPUTS, "Succeeded");
    // Results that are JSON are embedded as JSON (compacted, keys in the
    // order printed); a parameter list is parsed only when every value is an
    // object or array; the skipped items 2 and 4 add nothing.
    assert_eq!(
        f.logs("loop-outputs", "show").trim(),
        r#"r=[{"z":1,"a":"x y"},{"z":3,"a":"x y"}] p=[[1],[3]] q=["1","3"] all=[{"p":"[ 1 ]","q":"1"},{"p":"[ 3 ]","q":"3"}]"#
    );
    run_expecting(&f, "dag-loop", DAG_LOOP, "Succeeded");
    assert_eq!(f.logs("dag-loop", "show").trim(), "[1,3]");
}

const SKIPPED_PRODUCER: &str = r#"  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: producer
        template: produce
        when: "false"
    - - name: consumer
        template: consume
        arguments:
          parameters:
          - {name: a, value: "{{steps.producer.outputs.parameters.with-default}}"}
          - {name: b, value: "{{steps.producer.outputs.parameters.no-default}}"}
          - {name: c}
  - name: produce
    outputs:
      parameters:
      - {name: with-default, valueFrom: {path: /tmp/a, default: from-producer}}
      - {name: no-default, valueFrom: {path: /tmp/b}}
    container: {image: alpine, command: [sh, -c, "echo ran > /tmp/a; echo ran > /tmp/b"]}
  - name: consume
    inputs:
      parameters:
      - {name: a}
      - {name: b, default: CONSUMER_B}
      - {name: c, default: from-consumer-c}
    container: {image: alpine, command: [echo, "a={{inputs.parameters.a}} b={{inputs.parameters.b}} c={{inputs.parameters.c}}"]}
"#;

const OMITTED_PRODUCER: &str = r#"  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: gate, template: produce}
      - name: producer
        depends: gate.Failed
        template: produce
      - name: consumer
        depends: producer.Omitted
        template: consume
        arguments:
          parameters:
          - {name: a, value: "{{tasks.producer.outputs.parameters.with-default}}"}
          - {name: b, value: "{{tasks.producer.outputs.parameters.no-default}}"}
  - name: produce
    outputs:
      parameters:
      - {name: with-default, valueFrom: {path: /tmp/a, default: from-producer}}
      - {name: no-default, valueFrom: {path: /tmp/b}}
    container: {image: alpine, command: [sh, -c, "echo ran > /tmp/a; echo ran > /tmp/b"]}
  - name: consume
    inputs:
      parameters:
      - {name: a}
      - {name: b, default: CONSUMER_B}
    container: {image: alpine, command: [echo, "a={{inputs.parameters.a}} b={{inputs.parameters.b}}"]}
"#;

#[test]
fn a_skipped_producers_output_default_and_the_consumers_input_default_apply() {
    let f = Ferry::new();
    run_expecting(&f, "skipped-producer", SKIPPED_PRODUCER, "Succeeded");
    assert_eq!(f.logs("skipped-producer", "consumer").trim(), "a=from-producer b=CONSUMER_B c=from-consumer-c");
    // An omitted DAG task is read the same way.
    run_expecting(&f, "omitted-producer", OMITTED_PRODUCER, "Succeeded");
    assert_eq!(f.logs("omitted-producer", "consumer").trim(), "a=from-producer b=CONSUMER_B");
}

#[test]
fn an_output_a_skipped_step_never_produced_and_nothing_defaults_errors_the_consumer() {
    let f = Ferry::new();
    // Without the consumer's default for `b`, and with `b` inside a longer text.
    let spec = SKIPPED_PRODUCER.replace("{name: b, default: CONSUMER_B}", "{name: b}");
    let doc = run_expecting(&f, "no-default", &spec, "Error");
    let message = node(&doc, "consumer")["message"].as_str().unwrap().to_string();
    assert!(message.contains("inputs.parameters.b") && message.contains("no default"), "{message}");
    let spec = SKIPPED_PRODUCER.replace(
        "value: \"{{steps.producer.outputs.parameters.no-default}}\"",
        "value: \"x-{{steps.producer.outputs.parameters.no-default}}\"",
    );
    let doc = run_expecting(&f, "in-a-text", &spec, "Error");
    let message = node(&doc, "consumer")["message"].as_str().unwrap().to_string();
    assert!(message.contains("steps.producer was Skipped") && message.contains("no-default"), "{message}");
}

#[test]
fn lint_refuses_a_container_without_a_command_for_the_local_runtime_only() {
    let f = Ferry::new();
    let spec = "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: a, template: entry}\n  - name: entry\n    container: {image: alpine:3.20, args: [hello]}\n";
    let file = f.workflow("no-command", spec);
    let path = file.to_str().unwrap();
    let out = f.ferry(&["lint", path]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("spec.templates[1].container.command: is required with the local runtime"), "{err}");
    assert!(err.contains("\"alpine:3.20\""), "{err}");
    // `ferry run` refuses it before anything starts, as for any lint problem.
    let run = f.ferry(&["run", path]);
    assert_eq!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("container.command"));
    // Docker runs the image's entrypoint with the args, so it is fine there.
    let docker = f.ferry(&["lint", "--runtime", "docker", path]);
    assert_eq!(docker.status.code(), Some(0), "{}", String::from_utf8_lossy(&docker.stderr));
}

#[test]
fn logs_of_a_run_where_no_step_ran_say_so_and_exit_0() {
    let f = Ferry::new();
    let skipped = "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: a, template: echo, when: 'false'}\n  - name: echo\n    container: {image: alpine, command: [echo, hi]}\n";
    run_expecting(&f, "all-skipped", skipped, "Succeeded");
    // The only pod fails before its process starts: the item is not in the input's enum.
    let errored = "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: a, template: echo, withItems: [c], arguments: {parameters: [{name: m, value: '{{item}}'}]}}\n  - name: echo\n    inputs: {parameters: [{name: m, enum: [a, b]}]}\n    container: {image: alpine, command: [echo, '{{inputs.parameters.m}}']}\n";
    run_expecting(&f, "no-pod-ran", errored, "Error");
    let cases = [
        (&["logs", "all-skipped"][..], "all-skipped: no step ran, so there are no logs (Succeeded)"),
        (&["logs", "all-skipped", "a"], "a: no log: it did not run (Skipped: when 'false' evaluated false)"),
        (&["logs", "no-pod-ran"], "no-pod-ran: no step ran, so there are no logs (Error: "),
        (
            &["logs", "no-pod-ran", "a(0:c)"],
            "a(0:c): no log: its process never started (Error: inputs.parameters.m: value \"c\" is not one of a, b)",
        ),
    ];
    for (args, said) in cases {
        let out = f.ferry(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(out.stdout.is_empty() && err.contains(said), "{args:?}: {err}");
    }
    // A step the run does not have is a bad argument (exit 2).
    let out = f.ferry(&["logs", "all-skipped", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no step \"nope\" in all-skipped"));
}

const FAILURES: &str = r#"  entrypoint: main
  onExit: report
  templates:
  - name: main
    steps:
    - - {name: breaks, template: fails}
  - name: fails
    container: {image: alpine, command: [sh, -c, "echo oops; exit 3"]}
  - name: report
    container: {image: alpine, command: [echo, "{{workflow.failures}}"]}
"#;

#[test]
fn workflow_failures_lists_every_failed_node_with_argos_fields_and_rfc3339_times() {
    let f = Ferry::new();
    let doc = run_expecting(&f, "failures", FAILURES, "Failed");
    let text = f.logs("failures", "onExit");
    let failures: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let listed = failures.as_array().unwrap();
    let names: Vec<&str> = listed.iter().map(|f| f["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["failures", "[0]", "breaks"], "{failures}");
    let pod = &listed[2];
    let mut fields: Vec<&String> = pod.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["displayName", "finishedAt", "message", "phase", "podName", "templateName"]);
    assert_eq!((&pod["templateName"], &pod["phase"]), (&"fails".into(), &"Failed".into()));
    assert_eq!(pod["message"], node(&doc, "breaks")["message"]);
    let pod_name = pod["podName"].as_str().unwrap();
    assert!(pod_name.starts_with("failures-fails-"), "{pod_name}");
    assert!(f.home.path().join("runs/failures/logs").join(format!("{pod_name}.log")).exists(), "{pod_name}");
    // finishedAt is the node's finish, in RFC 3339 UTC to the second (as Kubernetes writes times).
    let finished = node(&doc, "breaks")["finished"].as_i64().unwrap();
    let at = pod["finishedAt"].as_str().unwrap();
    let shape: String = at.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    assert_eq!(shape, "0000-00-00T00:00:00Z", "{at}");
    assert_eq!(at, ferry_workflow::time::rfc3339(finished));
    assert_eq!(listed[0]["podName"], "failures", "the root's pod name is the workflow's");
}

#[test]
fn after_a_resume_the_root_nodes_duration_covers_the_whole_run() {
    let f = Ferry::new();
    let work = tempfile::tempdir().unwrap();
    let file = super::resume_workflow(work.path());
    let dir_arg = format!("dir={}", work.path().display());
    let mut child = f
        .cmd()
        .args(["run", "-q", file.to_str().unwrap(), "-p", &dir_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    super::wait_for("the second step", || work.path().join("second-started").exists());
    let root = |doc: &serde_json::Value| node(doc, "resume-me").clone();
    super::wait_for("the root to be saved running", || root(&f.get("resume-me"))["started"].is_i64());
    let first_start = root(&f.get("resume-me"))["started"].as_i64().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // Time passes between the kill and the resume, as it would.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(work.path().join("go"), "").unwrap();
    let o = f.ferry(&["resume", "resume-me", "--output", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = f.get("resume-me");
    let (root, second) = (root(&doc), node(&doc, "second").clone());
    // The root keeps its first start (Argo's startedAt never moves) and ends
    // after the last step: its duration is the whole run, not the resumed part.
    assert_eq!(root["started"].as_i64(), Some(first_start), "{root}");
    assert!(root["finished"].as_i64().unwrap() >= second["finished"].as_i64().unwrap(), "{root} {second}");
    assert!(root["finished"].as_i64().unwrap() - first_start >= 300, "{root}");
    assert!(doc["workflow"]["created"].as_i64().unwrap() <= first_start);
}

#[test]
fn a_template_timeout_fails_the_step_and_lint_checks_it() {
    let f = Ferry::new();
    let spec = "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: slow, template: slow}\n  - name: slow\n    timeout: 1s\n    script: {image: alpine, command: [sh], source: 'echo started; sleep 60; echo finished'}\n";
    let doc = run_expecting(&f, "timeout", spec, "Failed");
    let slow = node(&doc, "slow");
    assert_eq!((&slow["phase"], &slow["message"]), (&"Failed".into(), &"Step exceeded its deadline".into()));
    assert_eq!(f.logs("timeout", "slow").trim(), "started");
    let bad = "  entrypoint: main\n  templates:\n  - name: main\n    timeout: 10s\n    steps:\n    - - {name: a, template: a}\n  - name: a\n    timeout: '10'\n    container: {image: alpine, command: [echo]}\n";
    let file = f.workflow("bad-timeout", bad);
    let out = f.ferry(&["lint", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("spec.templates[0].timeout: is for container and script templates only"), "{err}");
    assert!(err.contains("spec.templates[1].timeout: \"10\" is not a duration with a unit"), "{err}");
}

const TEMPLATE_DEFAULTS: &str = r#"  entrypoint: main
  templateDefaults:
    timeout: 1s
    container:
      image: alpine
      command: [sh, -c]
      env: [{name: GREETING, value: default-hello}, {name: WHO, value: default-who}]
  templates:
  - name: main
    steps:
    - - {name: greet, template: greet}
      - {name: slow, template: slow}
  - name: greet
    container:
      args: ['echo "$GREETING $WHO"']
      env: [{name: WHO, value: own-who}]
  - name: slow
    timeout: 30s
    container:
      args: ['sleep 2; echo slept']
"#;

#[test]
fn template_defaults_merge_into_every_template_as_argo_merges_them() {
    let f = Ferry::new();
    let file = f.workflow("defaults", TEMPLATE_DEFAULTS);
    // The default command satisfies lint's local check; the steps template
    // takes neither the container nor the timeout.
    let out = f.ferry(&["lint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = run_expecting(&f, "defaults", TEMPLATE_DEFAULTS, "Succeeded");
    // env merges by name, the template's own entry winning.
    assert_eq!(f.logs("defaults", "greet").trim(), "default-hello own-who");
    // The template's timeout wins over the default 1s.
    assert_eq!(f.logs("defaults", "slow").trim(), "slept");
    assert_eq!(node(&doc, "defaults")["kind"], "Steps");
    // A default the template does not override applies: 1s stops a 2s sleep.
    let spec = TEMPLATE_DEFAULTS.replace("    timeout: 30s\n", "");
    let doc = run_expecting(&f, "default-timeout", &spec, "Failed");
    assert_eq!(node(&doc, "slow")["message"], "Step exceeded its deadline");
}

/// An output artifact with `globalName` is `{{workflow.outputs.artifacts.X}}`
/// for templates that start after it was saved, the exit handler too.
#[test]
fn a_global_output_artifact_reaches_later_templates_and_the_exit_handler() {
    let f = Ferry::new();
    let spec = r#"  entrypoint: main
  onExit: read
  templates:
  - name: main
    steps:
    - - {name: make, template: make}
    - - {name: later, template: read}
  - name: make
    outputs:
      artifacts:
      - {name: report, path: /tmp/report.txt, globalName: final-report}
    container: {image: alpine, command: [sh, -c, "echo quarterly > /tmp/report.txt"]}
  - name: read
    steps:
    - - name: cat
        template: cat
        arguments: {artifacts: [{name: in, from: "{{workflow.outputs.artifacts.final-report}}"}]}
  - name: cat
    inputs: {artifacts: [{name: in, path: /tmp/in.txt}]}
    container: {image: alpine, command: [cat, /tmp/in.txt]}
"#;
    let doc = run_expecting(&f, "global-art", spec, "Succeeded");
    let cats: Vec<_> = doc["nodes"].as_array().unwrap().iter().filter(|n| n["template"] == "cat").collect();
    assert_eq!(cats.len(), 2, "the later step and the exit handler each read it");
    assert_eq!(f.logs("global-art", "cat").lines().filter(|l| l.trim().ends_with("quarterly")).count(), 2);
}

/// `spec.workflowMetadata` adds labels and annotations to the run, some from
/// expressions over its parameters, as `{{workflow.labels.X}}` reads them.
#[test]
fn workflow_metadata_labels_the_run_from_its_parameters() {
    let f = Ferry::new();
    let spec = r#"  entrypoint: main
  arguments: {parameters: [{name: team, value: data}]}
  workflowMetadata:
    labels: {tier: batch}
    annotations: {owner: ops}
    labelsFrom:
      team: {expression: "workflow.parameters.team + '-' + workflow.name"}
  templates:
  - name: main
    container: {image: alpine, command: [echo, "{{workflow.labels.tier}} {{workflow.labels.team}} {{workflow.annotations.owner}}"]}
"#;
    run_expecting(&f, "labelled", spec, "Succeeded");
    assert_eq!(f.logs("labelled", "labelled").trim(), "batch data-labelled ops");
    let bad = f.workflow(
        "bad-labels",
        "  entrypoint: main\n  workflowMetadata: {labelsFrom: {x: {expression: 'workflow.parameters.nope +'}}}\n  templates:\n  - name: main\n    container: {image: alpine, command: [echo]}\n",
    );
    let o = f.ferry(&["lint", bad.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("spec.workflowMetadata.labelsFrom.x.expression"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `--image-map IMAGE=PROGRAM` with the local runtime: a container of that
/// image that gives no command runs the program with its args, as the
/// image's entrypoint would; lint then accepts it.
#[test]
fn a_mapped_image_runs_a_program_of_this_host_as_its_entrypoint() {
    let f = Ferry::new();
    // Outside /tmp: each sandboxed step has a /tmp of its own.
    let tool = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("greet-{}", std::process::id()));
    std::fs::write(&tool, "#!/bin/sh\necho \"greetings, $1\"\n").unwrap();
    let mut perms = std::fs::metadata(&tool).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&tool, perms).unwrap();
    let spec =
        "  entrypoint: main\n  templates:\n  - name: main\n    container: {image: example/greeter:1, args: [world]}\n";
    let file = f.workflow("mapped", spec);
    let map = format!("example/greeter:1={}", tool.display());
    let (code, doc) = f.run(&[&file], &["--image-map", &map]);
    assert_eq!(code, 0, "{}", serde_json::to_string_pretty(&doc).unwrap());
    assert_eq!(f.logs("mapped", "mapped").trim(), "greetings, world");
    let file = f.workflow("unmapped", &spec.replace("greeter", "other"));
    let o = f.ferry(&["run", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--image-map IMAGE=PROGRAM"), "{err}");
    let under_tmp = f.ferry(&["run", "--image-map", "example/greeter:1=/tmp/greet", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&under_tmp.stderr);
    assert!(!under_tmp.status.success() && err.contains("the program is under /tmp"), "{err}");
    let _ = std::fs::remove_file(&tool);
}

/// A retry expression may hold `{{...}}` tags (substituted from the
/// template's inputs first) and reads `lastRetry.duration` as whole seconds.
#[test]
fn a_retry_expression_reads_the_templates_inputs_and_whole_seconds() {
    let f = Ferry::new();
    let spec = r#"  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: flaky, template: flaky, arguments: {parameters: [{name: max, value: "2"}]}}
  - name: flaky
    inputs: {parameters: [{name: max}]}
    retryStrategy:
      limit: "10"
      expression: "asInt(retries) < {{inputs.parameters.max}} && asInt(lastRetry.duration) < 120"
    container: {image: alpine, command: [sh, -c, "exit 3"]}
"#;
    let doc = run_expecting(&f, "retry-tags", spec, "Failed");
    let attempts = doc["nodes"].as_array().unwrap().iter().filter(|n| n["kind"] == "Pod").count();
    assert_eq!(attempts, 3, "attempts 0, 1 and 2; the expression stops the fourth");
    let retry = doc["nodes"].as_array().unwrap().iter().find(|n| n["kind"] == "Retry").unwrap();
    assert!(
        retry["message"].as_str().unwrap().contains("retryStrategy.expression evaluated to false"),
        "{}",
        retry["message"]
    );
}

/// A file with one `WorkflowTemplate` (or `ClusterWorkflowTemplate`) and no
/// `Workflow` runs it, as `argo submit --from workflowtemplate/NAME` does.
#[test]
fn a_lone_workflow_template_runs_as_a_workflow_of_it() {
    let f = Ferry::new();
    let text = "apiVersion: argoproj.io/v1alpha1\nkind: ClusterWorkflowTemplate\nmetadata: {name: greeter}\nspec:\n  entrypoint: main\n  arguments: {parameters: [{name: who, value: templates}]}\n  templates:\n  - name: main\n    container: {image: alpine, command: [echo, 'hello {{workflow.parameters.who}}']}\n";
    let file = f.home.path().join("greeter.yaml");
    std::fs::write(&file, text).unwrap();
    let (code, doc) = f.run(&[&file], &["-p", "who=you"]);
    assert_eq!(code, 0, "{}", serde_json::to_string_pretty(&doc).unwrap());
    let name = doc["workflow"]["name"].as_str().unwrap();
    assert!(name.starts_with("greeter-"), "{name}");
    assert_eq!(f.logs(name, name).trim(), "hello you");
    let two = text.to_string() + "---\n" + &text.replace("greeter", "other");
    std::fs::write(&file, two).unwrap();
    let o = f.ferry(&["run", file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nor a single WorkflowTemplate"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `{{workflow.priority}}`, `{{workflow.serviceAccountName}}` (recorded
/// settings, readable) and `{{steps.X.hostNodeName}}` (this machine).
#[test]
fn recorded_settings_and_the_host_node_name_are_readable() {
    let f = Ferry::new();
    let spec = r#"  entrypoint: main
  priority: 5
  serviceAccountName: runner
  templates:
  - name: main
    steps:
    - - {name: a, template: echo, arguments: {parameters: [{name: v, value: "{{workflow.priority}} {{workflow.serviceAccountName}}"}]}}
    - - {name: b, template: echo, arguments: {parameters: [{name: v, value: "{{steps.a.hostNodeName}}"}]}}
  - name: echo
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.v}}"]}
"#;
    run_expecting(&f, "settings", spec, "Succeeded");
    assert_eq!(f.logs("settings", "a").trim(), "5 runner");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(f.logs("settings", "b").trim(), host.trim());
}

/// Argo's node context: `{{steps.name}}` / `{{tasks.name}}` name the step or
/// task a template runs as, in its arguments and in the template itself;
/// `{{workflow.parameters.json}}` is every parameter as JSON.
#[test]
fn node_context_names_the_step_and_the_parameters_as_json() {
    let f = Ferry::new();
    let spec = r#"  entrypoint: main
  arguments: {parameters: [{name: a, value: "1"}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: first, template: show, arguments: {parameters: [{name: v, value: "arg {{tasks.name}}"}]}}
  - name: show
    inputs: {parameters: [{name: v}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.v}} / {{tasks.name}} / {{workflow.parameters.json}}"]}
"#;
    run_expecting(&f, "node-ctx", spec, "Succeeded");
    assert_eq!(f.logs("node-ctx", "first").trim(), r#"arg first / first / {"a":"1"}"#);
}
