//! `ferry-conformance init`: a starter profile with every field written out
//! and commented, so a driver author edits a file instead of writing YAML
//! from the docs. Every value comes from the flags or from the profile's own
//! defaults ([`Claims::default`], [`Limits::default`]), so the file and the
//! loader cannot disagree about what an omitted field means.

use crate::profile::{Claims, Limits};
use anyhow::{Result, bail};

/// What `init` was told about the driver: its command-line arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Starter {
    /// The driver's name: plugin.name in every request, and the socket's directory.
    #[arg(long)]
    pub driver: String,
    /// The driver's program and its arguments, after `--`; the socket path is
    /// appended when it runs. Without one, the launch block is commented out.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Launch this local container image instead of a command.
    #[arg(long)]
    pub image: Option<String>,
    /// plugin.configuration, verbatim ({sharedDir} is the run's work
    /// directory). Without it, an empty one marked TODO.
    #[arg(long)]
    pub configuration: Option<String>,
    /// plugin.altConfiguration: a second, isolated location.
    #[arg(long)]
    pub alt_configuration: Option<String>,
    /// The driver stores `archive: none` directories (every object under key/).
    #[arg(long)]
    pub directories: bool,
    /// The driver only reads: Save and Delete are refused.
    #[arg(long)]
    pub read_only: bool,
    /// GetCapabilities advertises SaveStream. Without it, the profile leaves
    /// that unchecked (null): an author who did not say may not know.
    #[arg(long)]
    pub save_stream: bool,
}

impl Starter {
    /// The profile's YAML text. Errors name the flag that is wrong.
    pub fn render(&self) -> Result<String> {
        check_driver_name(&self.driver)?;
        if !self.command.is_empty() && self.image.is_some() {
            bail!("give a command or --image, not both: a profile launches one or the other");
        }
        let claims = Claims {
            directories: self.directories,
            read_only: self.read_only,
            save_stream: self.save_stream.then_some(true),
            ..Claims::default()
        };
        let limits = Limits::default();
        let q = quote;
        let mut y = String::new();
        y.push_str(&format!(
            "# Conformance profile for the {name} driver, written by `ferry-conformance init`.\n\
             # Check it:  ferry-conformance --validate --profile THIS_FILE\n\
             # Run it:    ferry-conformance --profile THIS_FILE [--mode quick|core|full|certify] [--report report.md]\n\
             # Every field is written out with its default; delete what you do not need.\n\
             # docs/conformance.md describes each one and the cases it enables.\n\n",
            name = self.driver
        ));
        y.push_str(&format!(
            "driver:\n  \
             # plugin.name in every request, and the socket's directory: artifact-plugins/<name>/socket.\n  \
             name: {}\n  \
             # Free-form, printed in reports.\n  \
             version: null\n\n",
            q(&self.driver)
        ));
        y.push_str(&self.launch_block());
        let configuration = self.configuration.clone().unwrap_or_default();
        let todo = if self.configuration.is_none() {
            "  # TODO: the configuration your driver reads (empty until you set it).\n"
        } else {
            ""
        };
        y.push_str(&format!(
            "plugin:\n  \
             # PluginArtifact.configuration, sent verbatim with every request. {{sharedDir}} becomes\n  \
             # the run's work directory, which the suite and the driver share (Load and Save paths\n  \
             # live there). For a driver that stores in a directory: \"root: {{sharedDir}}/storage\";\n  \
             # for a bucket: \"bucket: my-test-bucket\\nendpoint: http://127.0.0.1:9000\".\n\
             {todo}  configuration: {}\n  \
             # A second, isolated location (another root or bucket): the isolation cases need it.\n  \
             altConfiguration: {}\n  \
             # Every key the suite writes starts with this, then a random run id; the run deletes\n  \
             # that namespace at the end.\n  \
             keyPrefix: \"ferry-conformance/\"\n\n",
            q(&configuration),
            self.alt_configuration.as_deref().map_or("null".to_string(), q),
        ));
        y.push_str(
            "# Strings that must never appear in the driver's output or error messages: a token the\n\
             # configuration carries, for example. \"${env:MY_TOKEN}\" reads the runner's environment.\n\
             secrets: []\n\n\
             # Configurations the driver must refuse with a clear error (the AD-CONF cases), each with a\n\
             # regex the message must match: your own definition of \"clear\". For example:\n\
             #   - name: relative-root\n\
             #     configuration: \"root: relative/dir\"\n\
             #     expectErrorMatching: \"(?i)absolute\"\n\
             badConfigurations: []\n\n",
        );
        y.push_str(&format!(
            "# What the driver says it does; every claim is probed, and the cases a claim rules out are\n\
             # skipped with that reason.\n\
             claims:\n  \
             # archive: none artifacts: every object under key/, Load and Save of whole trees.\n  \
             directories: {}\n  \
             # Save and Delete are refused (a driver that only reads).\n  \
             readOnly: {}\n  \
             # Objects survive a restart of the driver process.\n  \
             persistent: {}\n  \
             # Whether GetCapabilities advertises SaveStream (AD-CAP-005); null: not checked.\n  \
             saveStream: {}\n  \
             # The empty key names an artifact (git: the whole repository); false: it must be refused.\n  \
             rootKey: {}\n  \
             # Delete removes objects; false: Delete must be refused and keep the object.\n  \
             delete: {}\n  \
             # ListObjects names what was saved; false: the cases that list are skipped.\n  \
             list: {}\n\n",
            claims.directories,
            claims.read_only,
            claims.persistent,
            claims.save_stream.map_or("null".into(), |b| b.to_string()),
            claims.root_key,
            claims.delete,
            claims.list,
        ));
        y.push_str(&format!(
            "# The measured cases are held to these.\n\
             limits:\n  \
             # From the socket appearing to the driver being READY, in ms.\n  \
             startupMs: {}\n  \
             # From SIGTERM to exit 0, in seconds (Argo e2e's terminationGracePeriodSeconds).\n  \
             sigtermGraceSeconds: {}\n  \
             # Any single call, in seconds.\n  \
             rpcDeadlineSeconds: {}\n  \
             # Peak RSS of the driver while it moves largeFileBytes (Argo's executor memory limit).\n  \
             maxRssMiB: {}\n  \
             # Size of the large-file cases, in bytes.\n  \
             largeFileBytes: {}\n\n",
            limits.startup_ms,
            limits.sigterm_grace_seconds,
            limits.rpc_deadline_seconds,
            limits.max_rss_mib,
            limits.large_file_bytes,
        ));
        y.push_str(
            "# Commands (argv) the suite runs to break the backend while the driver streams an object,\n\
             # and to mend it (AD-STREAM-011). They get FERRY_CONFORMANCE_KEY and\n\
             # FERRY_CONFORMANCE_SHARED_DIR in their environment. For a directory-backed driver:\n\
             #   backendDown: [\"sh\", \"-c\", \"truncate -s 4096 \\\"$FERRY_CONFORMANCE_SHARED_DIR/storage/$FERRY_CONFORMANCE_KEY\\\"\"]\n\
             hooks:\n  \
             backendDown: null\n  \
             backendUp: null\n\n\
             # Cases known to fail, each with its reason: reported as TODO, refused by --mode certify.\n\
             #   - id: AD-KEY-006\n\
             #     reason: the backend caps keys at 512 bytes\n\
             expectedFailures: []\n",
        );
        Ok(y)
    }

    fn launch_block(&self) -> String {
        let head = "# How the suite starts the driver, as Argo does: the program with the socket path appended\n\
                    # as its last argument, or a local image's entrypoint with the socket path (--image NAME\n\
                    # does the same from the command line). Leave it out to test a running driver (--socket).\n";
        if let Some(image) = &self.image {
            return format!(
                "{head}launch:\n  image: {}\n  # Extra environment for the driver; \"${{env:NAME}}\" reads the runner's.\n  env: {{}}\n\n",
                quote(image)
            );
        }
        if self.command.is_empty() {
            return format!(
                "{head}# launch:\n#   command: [\"./my-driver\"]\n#   # Extra environment for the driver; \"${{env:NAME}}\" reads the runner's.\n#   env: {{}}\n\n"
            );
        }
        let argv: Vec<String> = self.command.iter().map(|a| quote(a)).collect();
        format!(
            "{head}launch:\n  command: [{}]\n  # Extra environment for the driver; \"${{env:NAME}}\" reads the runner's.\n  env: {{}}\n\n",
            argv.join(", ")
        )
    }
}

/// A YAML double-quoted scalar: JSON's string syntax is valid YAML and
/// escapes everything YAML would otherwise read as structure.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The name becomes a directory of the socket path and Argo's plugin name,
/// which is a Kubernetes-style name.
fn check_driver_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "--driver {name:?}: a driver name is 1 to 63 lowercase letters, digits and '-', not starting or ending with '-' (it names the plugin and the socket's directory)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    fn load(s: &Starter) -> Profile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, s.render().unwrap()).unwrap();
        Profile::load(&path).unwrap_or_else(|e| panic!("{e:#}\n{}", s.render().unwrap()))
    }

    #[test]
    fn every_combination_of_flags_loads_with_what_the_flags_said() {
        for directories in [false, true] {
            for read_only in [false, true] {
                for launch in 0..3 {
                    let s = Starter {
                        driver: "my-driver".into(),
                        command: if launch == 1 { vec!["./bin/drv".into(), "--flag \"x\"".into()] } else { vec![] },
                        image: (launch == 2).then(|| "example/driver:dev".into()),
                        configuration: Some("root: {sharedDir}/storage\nmode: \"a: b\"".into()),
                        alt_configuration: None,
                        directories,
                        read_only,
                        save_stream: true,
                    };
                    let p = load(&s);
                    assert_eq!(p.driver.name, "my-driver");
                    assert_eq!((p.claims.directories, p.claims.read_only), (directories, read_only));
                    assert_eq!(p.claims.save_stream, Some(true));
                    assert_eq!(p.plugin.configuration, "root: {sharedDir}/storage\nmode: \"a: b\"");
                    assert_eq!(p.plugin.alt_configuration, None);
                    match launch {
                        0 => assert!(p.launch.is_none()),
                        1 => assert_eq!(p.launch.unwrap().command, ["./bin/drv", "--flag \"x\""]),
                        _ => assert_eq!(p.launch.unwrap().image.as_deref(), Some("example/driver:dev")),
                    }
                    assert!(p.bad_configurations.is_empty() && p.secrets.is_empty());
                    assert!(p.expected_failures.is_empty() && p.hooks.backend_down.is_none());
                }
            }
        }
    }

    #[test]
    fn the_limits_and_unflagged_claims_are_the_loaders_defaults() {
        let p = load(&Starter { driver: "d".into(), ..Default::default() });
        assert_eq!(p.claims.save_stream, None, "unsaid, SaveStream is not checked");
        let (want, got) = (Limits::default(), p.limits);
        assert_eq!(
            (
                got.startup_ms,
                got.sigterm_grace_seconds,
                got.rpc_deadline_seconds,
                got.max_rss_mib,
                got.large_file_bytes
            ),
            (
                want.startup_ms,
                want.sigterm_grace_seconds,
                want.rpc_deadline_seconds,
                want.max_rss_mib,
                want.large_file_bytes
            )
        );
        let want = Claims::default();
        assert_eq!(
            (p.claims.persistent, p.claims.root_key, p.claims.delete, p.claims.list),
            (want.persistent, want.root_key, want.delete, want.list)
        );
        assert_eq!(p.plugin.key_prefix, "ferry-conformance/");
        assert_eq!(p.plugin.configuration, "");
    }

    #[test]
    fn every_field_of_the_profile_is_written_out() {
        let text = Starter { driver: "d".into(), command: vec!["x".into()], ..Default::default() }.render().unwrap();
        for field in [
            "driver:",
            "name:",
            "version:",
            "launch:",
            "command:",
            "env:",
            "plugin:",
            "configuration:",
            "altConfiguration:",
            "keyPrefix:",
            "secrets:",
            "badConfigurations:",
            "claims:",
            "directories:",
            "readOnly:",
            "persistent:",
            "saveStream:",
            "rootKey:",
            "delete:",
            "list:",
            "limits:",
            "startupMs:",
            "sigtermGraceSeconds:",
            "rpcDeadlineSeconds:",
            "maxRssMiB:",
            "largeFileBytes:",
            "hooks:",
            "backendDown:",
            "backendUp:",
            "expectedFailures:",
        ] {
            assert!(text.lines().any(|l| l.trim_start().starts_with(field)), "{field} missing from\n{text}");
        }
    }

    #[test]
    fn bad_names_and_two_launches_are_refused_naming_the_flag() {
        for name in ["", "My-Driver", "a/b", "-x", "x-", &"a".repeat(64)] {
            let err = Starter { driver: name.into(), ..Default::default() }.render().unwrap_err().to_string();
            assert!(err.starts_with("--driver"), "{err}");
        }
        let both =
            Starter { driver: "d".into(), command: vec!["x".into()], image: Some("i".into()), ..Default::default() };
        assert!(both.render().unwrap_err().to_string().contains("--image"));
    }
}
