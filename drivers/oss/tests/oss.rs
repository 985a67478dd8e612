//! ferry-driver-oss as a separate process, virtual-hosted style against real
//! S3-compatible servers: s3s-fs (signatures checked) for objects and moto for
//! the bucket lifecycle rules OSS users configure.

use ferry_sdk::client::Location;
use ferry_test_servers::{ACCESS_KEY, BUCKET, DriverProcess, Moto, S3sFs, SECRET_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-oss");

/// moto keeps one backend per AWS region and answers 500 for others, such
/// as the `cn-test` derived from the test endpoint.
const MOTO_REGION: &str = ", region: us-east-1";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("FERRY_SECRET_OSS_ACCESSKEY", ACCESS_KEY),
        ("FERRY_SECRET_OSS_SECRETKEY", SECRET_KEY),
        ("FERRY_RESOLVE", "ferry.test=127.0.0.1"),
    ]
}

fn config(port: u16, bucket: &str, extra: &str) -> String {
    format!(
        "{{endpoint: 'oss-cn-test.ferry.test:{port}', insecure: true, bucket: {bucket}, accessKeySecret: {{name: oss, key: accessKey}}, secretKeySecret: {{name: oss, key: secretKey}}{extra}}}"
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn objects_go_through_virtual_hosted_requests_with_checked_signatures() {
    let s3 = S3sFs::start_with_domain(Some("oss-cn-test.ferry.test"));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, "oss object").unwrap();
    let driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new("oss", config(s3.port, BUCKET, ""), "run/out/a.txt");
    driver.client.save(&at, &src).await.unwrap();
    // s3s-fs only serves `ferry-test.oss-cn-test.ferry.test` as the bucket
    // when the request really is virtual-hosted.
    assert_eq!(std::fs::read(s3.object("run/out/a.txt")).unwrap(), b"oss object");
    assert_eq!(driver.client.list(&at.with_key("run")).await.unwrap(), vec!["run/out/a.txt"]);
    // Ferry's ObjectService through the same engine: a HEAD, a ranged GET.
    assert_eq!(driver.client.stat(&at).await.unwrap(), Some(10));
    assert_eq!(ferry_test_servers::objects::read_range(&driver.client, &at, 4, 100).await, b"object");
    let back = dir.path().join("back.txt");
    driver.client.load(&at, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"oss object");
    driver.client.delete(&at).await.unwrap();
    assert!(!s3.object("run/out/a.txt").exists());
    assert!(!driver.log().contains(SECRET_KEY));

    let wrong = config(s3.port, BUCKET, "").replace("{name: oss, key: secretKey}", "{name: oss, key: accessKey}");
    let err = driver.client.save(&Location::new("oss", wrong, "x"), &src).await.unwrap_err();
    assert_eq!(err.kind(), ferry_sdk::ErrorKind::PermissionDenied, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: scripts/test.sh"]
async fn directories_round_trip() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "a").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "b").unwrap();
    let driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new(
        "oss",
        config(moto.port, "oss-dirs", &(MOTO_REGION.to_owned() + ", createBucketIfNotPresent: true")),
        "run/out",
    );
    driver.client.save(&at, &tree).await.unwrap();
    assert_eq!(driver.client.list(&at).await.unwrap(), vec!["run/out/a.txt", "run/out/sub/b.txt"]);
    assert!(driver.client.is_directory(&at).await.unwrap());
    let back = dir.path().join("back");
    driver.client.load(&at, &back).await.unwrap();
    assert_eq!(std::fs::read(back.join("sub/b.txt")).unwrap(), b"b");

    // A tree as Argo's OSS driver writes it: a `dir/` marker object for every
    // directory, the empty ones included. Markers are put with boto3 (moto's
    // own dependency) because object_store cannot name a key ending in `/`.
    let script = format!(
        "import boto3\n\
         c = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b')\n\
         for k in ['argo/', 'argo/empty/', 'argo/sub/']: c.put_object(Bucket='oss-dirs', Key=k, Body=b'')\n\
         c.put_object(Bucket='oss-dirs', Key='argo/sub/c.txt', Body=b'c')\n",
        moto.port
    );
    let python = ferry_test_servers::workspace_root().join(".venv/bin/python");
    let status = std::process::Command::new(python).arg("-c").arg(script).status().unwrap();
    assert!(status.success());
    let argo = at.with_key("argo");
    let back = dir.path().join("argo-back");
    driver.client.load(&argo, &back).await.unwrap();
    assert_eq!(std::fs::read(back.join("sub/c.txt")).unwrap(), b"c");
    assert!(back.join("empty").is_dir(), "an empty directory's marker becomes an empty directory");

    // Delete of the file key `run/out` is one object: the tree stays.
    driver.client.delete(&at).await.unwrap();
    assert_eq!(driver.client.list(&at).await.unwrap(), vec!["run/out/a.txt", "run/out/sub/b.txt"]);
    driver.client.delete(&at.with_key("run/out/")).await.unwrap();
    let gone = driver.client.list(&at).await.unwrap_err();
    assert_eq!(gone.kind(), ferry_sdk::ErrorKind::NotFound, "{gone}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: scripts/test.sh"]
async fn lifecycle_rules_are_written_and_bad_ones_refused() {
    let moto = Moto::start();
    let driver = DriverProcess::start(BIN, &env()).await;
    let cfg = config(
        moto.port,
        "oss-made",
        &(MOTO_REGION.to_owned()
            + ", createBucketIfNotPresent: true, lifecycleRule: {markInfrequentAccessAfterDays: 30, markDeletionAfterDays: 90}"),
    );
    let at = Location::new("oss", cfg.clone(), "probe");
    let probe = driver.client.list(&at).await.unwrap_err();
    assert_eq!(probe.kind(), ferry_sdk::ErrorKind::NotFound, "{probe}");

    // Read the rules back through the same signed client path.
    let oss = ferry_driver_oss::OssConfig::parse(&cfg).unwrap();
    let keys = ferry_driver_s3::Credentials::Keys {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        session_token: None,
    };
    let overrides = ferry_driver_s3::resolve::Overrides::parse("ferry.test=127.0.0.1").unwrap();
    let xml = oss.to_s3().connect_with(keys, Some(overrides)).await.unwrap().admin.get_lifecycle().await.unwrap();
    assert!(xml.contains("<DaysAfterInitiation>7</DaysAfterInitiation>"), "{xml}");
    assert!(xml.contains("<Days>30</Days>") && xml.contains("STANDARD_IA"), "{xml}");
    assert!(xml.contains("<Expiration><Days>90</Days></Expiration>"), "{xml}");

    let bad = config(
        moto.port,
        "oss-made",
        ", lifecycleRule: {markInfrequentAccessAfterDays: 90, markDeletionAfterDays: 30}",
    );
    let err = driver.client.list(&Location::new("oss", bad, "probe")).await.unwrap_err();
    assert!(
        err.to_string().contains("markInfrequentAccessAfterDays (90) must be less than markDeletionAfterDays (30)"),
        "{err}"
    );
}

/// No configuration value or secret makes the driver panic; see the S3
/// driver's test of the same name (OSS shares its engine).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: scripts/test.sh"]
async fn hostile_configuration_values_never_crash_the_driver() {
    use ferry_test_servers::Field;
    let moto = Moto::start();
    let secrets = tempfile::tempdir().unwrap();
    let dir = secrets.path().to_str().unwrap();
    let driver =
        DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", dir), ("FERRY_RESOLVE", "ferry.test=127.0.0.1")]).await;
    let endpoint = format!("oss-cn-test.ferry.test:{}", moto.port);
    let fields = [
        Field::Value { name: "endpoint", template: "{}", good: &endpoint },
        Field::Value { name: "insecure", template: "true", good: "" },
        Field::Value { name: "createBucketIfNotPresent", template: "true", good: "" },
        Field::Value { name: "bucket", template: "{}", good: "oss-hostile" },
        Field::Value { name: "region", template: "{}", good: "us-east-1" },
        Field::Value { name: "securityToken", template: "{}", good: "" },
        Field::Secret { name: "accessKeySecret", good: ACCESS_KEY },
        Field::Secret { name: "secretKeySecret", good: "ferry-test-secret\n" },
    ];
    let sent = ferry_test_servers::survives_hostile_configurations(&driver, "oss", secrets.path(), &fields, "k").await;
    assert!(sent >= 40, "{sent}");
}

/// A missing key's message names the key, the bucket and the server's error
/// code, never the raw XML body (issue 14).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: scripts/test.sh"]
async fn not_found_names_key_bucket_and_server_code_without_the_body() {
    let moto = Moto::start();
    let driver = DriverProcess::start(BIN, &env()).await;
    let cfg = config(moto.port, "oss-nf", &(MOTO_REGION.to_owned() + ", createBucketIfNotPresent: true"));
    let err = driver.client.open_stream(&Location::new("oss", cfg, "no/such/key")).await.err().unwrap();
    assert_eq!(err.kind(), ferry_sdk::ErrorKind::NotFound, "{err}");
    let m = err.message();
    assert!(m.contains("\"no/such/key\"") && m.contains("oss-nf") && m.contains("NoSuchKey"), "{err}");
    assert!(!m.contains('<') && !m.contains('\n'), "{err}");
}
