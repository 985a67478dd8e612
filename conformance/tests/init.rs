//! `init` writes a profile that `--validate` accepts unchanged, and refuses
//! to overwrite one; `--validate` refuses a broken profile before any driver starts.

use std::process::{Command, Output};

fn conformance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry-conformance")).args(args).output().unwrap()
}

#[test]
fn a_starter_profile_validates_unchanged_and_is_never_overwritten_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my-driver.yaml");
    let p = path.to_str().unwrap();
    let out = conformance(&["init", "--driver", "my-driver", "--directories", "--read-only", "-o", p, "--", "./drv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = conformance(&["--validate", "--profile", p]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (driver \"my-driver\")"));

    std::fs::write(&path, "edited").unwrap();
    let out = conformance(&["init", "--driver", "other", "-o", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited");
    let out = conformance(&["init", "--driver", "other", "-o", p, "--force"]);
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&path).unwrap().contains("name: \"other\""));
}

#[test]
fn validate_names_what_is_wrong_in_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    let p = path.to_str().unwrap();
    let cases = [
        ("driver: {name: d}\nplugin: {configuration: x}\nclaims: {directorys: true}\n", "directorys"),
        (
            "driver: {name: d}\nplugin: {configuration: x}\nbadConfigurations: [{name: b, configuration: y, expectErrorMatching: \"(\"}]\n",
            "expectErrorMatching is not a regex",
        ),
        (
            "driver: {name: d}\nplugin: {configuration: x}\nlaunch: {command: [x], env: {T: \"${env:NOT_SET_BY_ANYONE_7C1F}\"}}\n",
            "NOT_SET_BY_ANYONE_7C1F",
        ),
    ];
    for (text, named) in cases {
        std::fs::write(&path, text).unwrap();
        let out = conformance(&["--validate", "--profile", p]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{text}: {err}");
    }
}
