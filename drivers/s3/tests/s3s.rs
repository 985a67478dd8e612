//! ferry-driver-s3 as a separate process against s3s-fs, a real S3 server
//! that checks signatures: resumable uploads across processes, aborting what
//! is given up, virtual-hosted addressing, credentials errors, buckets created
//! on demand, outages and blackholed endpoints (through a FaultProxy), and
//! Ferry's ObjectService (HEAD for sizes, ranged GETs) on s3s-fs and moto.

use ferry_sdk::ErrorKind;
use ferry_sdk::client::Location;
use ferry_test_servers::fault::assert_calls_fail_clearly;
use ferry_test_servers::{ACCESS_KEY, BUCKET, DriverProcess, Fault, FaultProxy, Moto, S3sFs, SECRET_KEY, http_request};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-s3");
const PART: u64 = 8 << 20;

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("FERRY_SECRET_S3_ACCESSKEY", ACCESS_KEY),
        ("FERRY_SECRET_S3_SECRETKEY", SECRET_KEY),
        ("FERRY_SECRET_WRONG_SECRETKEY", "not-the-secret"),
        ("FERRY_PART_SIZE", "8Mi"),
    ]
}

fn config(endpoint: &str, extra: &str) -> String {
    format!(
        "{{endpoint: '{endpoint}', insecure: true, bucket: {BUCKET}, accessKeySecret: {{name: s3, key: accessKey}}, secretKeySecret: {{name: s3, key: secretKey}}{extra}}}"
    )
}

/// A file of pseudo-random bytes (a cheap LCG: the content only has to differ
/// per part so that a part sent to the wrong place shows).
fn write_file(path: &Path, size: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for b in buf.iter_mut() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::metadata(a).unwrap().len() == std::fs::metadata(b).unwrap().len()
        && std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// Parts the journal of `key` records as stored (0 before it exists).
fn journaled_parts(s3: &S3sFs, key: &str) -> usize {
    let journal = s3.object(&format!(".ferry-uploads/{key}.upload.json"));
    match std::fs::read(&journal) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .map(|v| v["parts"].as_object().map_or(0, |p| p.len()))
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// The figures of the driver's last "multipart upload done" log line.
fn upload_report(log: &str) -> (u64, u64, u64) {
    let line = log.lines().rev().find(|l| l.contains("multipart upload done")).expect("no multipart upload in the log");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let f = &v["fields"];
    (f["parts"].as_u64().unwrap(), f["reused"].as_u64().unwrap(), f["bytes_sent"].as_u64().unwrap())
}

/// Starts a Save of `src` to `key` and SIGKILLs the driver once the journal
/// records at least `parts` parts. Returns how many it recorded.
async fn kill_mid_upload(s3: &S3sFs, key: &str, src: &Path, parts: usize) -> usize {
    let mut driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new("s3", config(&s3.endpoint(), ""), key);
    let client = driver.client.clone();
    let src = src.to_path_buf();
    let save = tokio::spawn(async move { client.save(&at, &src).await });
    let start = Instant::now();
    while journaled_parts(s3, key) < parts {
        assert!(!save.is_finished(), "the save finished before it could be interrupted: {:?}", save.await);
        assert!(start.elapsed() < Duration::from_secs(120), "no progress: {}", driver.log());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    driver.kill();
    assert!(save.await.unwrap().is_err(), "a save whose driver was killed must fail");
    journaled_parts(s3, key)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn a_killed_save_resumes_in_a_new_process_sending_only_missing_parts() {
    let s3 = S3sFs::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let size = 50 * PART + 12345;
    write_file(&src, size, 1);

    let recorded = kill_mid_upload(&s3, "big.bin", &src, 10).await;
    assert!(!s3.object("big.bin").exists(), "a killed upload must not leave an object that looks complete");
    assert!(s3.stored_parts() >= recorded);

    let driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new("s3", config(&s3.endpoint(), ""), "big.bin");
    driver.client.save(&at, &src).await.unwrap();
    let (parts, reused, sent) = upload_report(&driver.log());
    assert_eq!(parts, 51);
    assert_eq!(reused as usize, recorded, "every part the journal recorded is verified and reused");
    assert_eq!(sent, size - recorded as u64 * PART, "only the parts not yet stored are sent again");

    assert!(same_bytes(&src, &s3.object("big.bin")), "the resumed object is byte-exact");
    let back = dir.path().join("back.bin");
    driver.client.load(&at, &back).await.unwrap();
    assert!(same_bytes(&src, &back));
    assert_eq!(journaled_parts(&s3, "big.bin"), 0);
    assert!(!s3.object(".ferry-uploads/big.bin.upload.json").exists(), "journal removed after completion");
    assert_eq!(s3.stored_parts(), 0, "no parts left behind");
    // The bucket as a whole is never an artifact: listing it is refused.
    let err = driver.client.list(&at.with_key("")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn a_changed_source_resends_the_changed_parts_and_delete_aborts_unfinished_uploads() {
    let s3 = S3sFs::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("data.bin");
    let size = 40 * PART;
    write_file(&src, size, 2);
    let recorded = kill_mid_upload(&s3, "out/data.bin", &src, 6).await;

    // Same size, other bytes: no recorded part may be trusted.
    write_file(&src, size, 3);
    let driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new("s3", config(&s3.endpoint(), ""), "out/data.bin");
    driver.client.save(&at, &src).await.unwrap();
    let (_, reused, sent) = upload_report(&driver.log());
    assert!(recorded > 0);
    assert_eq!((reused, sent), (0, size), "parts of the old content must all be sent again");
    assert!(same_bytes(&src, &s3.object("out/data.bin")));
    drop(driver);

    // An upload killed part-way, then its directory deleted (artifact GC):
    // the unfinished upload goes too. (A directory with objects in it is not
    // used here: s3s-fs answers HEAD of such a prefix with 500.)
    kill_mid_upload(&s3, "gone/other.bin", &src, 3).await;
    assert!(s3.stored_parts() > 0);
    let driver = DriverProcess::start(BIN, &env()).await;
    // The file key `gone` is one object: uploads under gone/ are not its own.
    driver.client.delete(&at.with_key("gone")).await.unwrap();
    assert!(s3.stored_parts() > 0, "a file Delete aborted an upload under key/");
    driver.client.delete(&at.with_key("gone/")).await.unwrap();
    assert_eq!(s3.stored_parts(), 0, "Delete aborts unfinished uploads under the key");
    assert!(!s3.object(".ferry-uploads/gone/other.bin.upload.json").exists());
    assert!(driver.log().contains("aborted unfinished uploads of the deleted key"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn wrong_credentials_fail_with_a_permission_error_naming_the_cause() {
    let s3 = S3sFs::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.txt");
    std::fs::write(&src, "x").unwrap();
    let driver = DriverProcess::start(BIN, &env()).await;
    let bad = config(&s3.endpoint(), "").replace("{name: s3, key: secretKey}", "{name: wrong, key: secretKey}");
    let err = driver.client.save(&Location::new("s3", bad, "f.txt"), &src).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("403") || err.to_string().to_lowercase().contains("signature"), "{err}");
    assert!(!driver.log().contains("not-the-secret"), "a secret reached the log");
    assert!(!driver.log().contains("retrying"), "a permission error must not be retried: {}", driver.log());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn virtual_hosted_addressing_reaches_the_bucket_by_host_name() {
    let s3 = S3sFs::start_with_domain(Some("s3.ferry.test"));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("v.txt");
    std::fs::write(&src, "virtual").unwrap();
    let mut env = env();
    env.push(("FERRY_RESOLVE", "ferry.test=127.0.0.1"));
    let driver = DriverProcess::start(BIN, &env).await;
    let endpoint = format!("s3.ferry.test:{}", s3.port);
    let at = Location::new("s3", config(&endpoint, ", addressing: virtual"), "v/v.txt");
    driver.client.save(&at, &src).await.unwrap();
    assert_eq!(std::fs::read(s3.object("v/v.txt")).unwrap(), b"virtual");
    let back = dir.path().join("back.txt");
    driver.client.load(&at, &back).await.unwrap();
    assert_eq!(std::fs::read(back).unwrap(), b"virtual");

    // Without the override the name does not resolve: the error says so.
    let plain = DriverProcess::start(BIN, &self::env()).await;
    let err = plain.client.save(&at, &src).await.unwrap_err();
    assert!(err.to_string().contains("s3.ferry.test") || err.to_string().contains("dns"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn create_bucket_if_not_present_makes_the_bucket_when_configured() {
    let s3 = S3sFs::start();
    let driver = DriverProcess::start(BIN, &env()).await;
    // Without the option a missing bucket is an error naming it.
    let missing = config(&s3.endpoint(), "").replace(BUCKET, "made-by-ferry");
    let err = driver.client.list(&Location::new("s3", missing, "probe")).await.unwrap_err();
    assert!(err.to_string().contains("NoSuchBucket") || err.to_string().contains("made-by-ferry"), "{err}");
    assert!(!s3.data.path().join("made-by-ferry").exists());
    // With it, configuring is enough (a listing writes nothing).
    let cfg = config(&s3.endpoint(), ", createBucketIfNotPresent: {}").replace(BUCKET, "made-by-ferry");
    let probe = driver.client.list(&Location::new("s3", cfg.clone(), "probe")).await.unwrap_err();
    assert_eq!(probe.kind(), ErrorKind::NotFound, "{probe}");
    assert!(s3.data.path().join("made-by-ferry").is_dir(), "bucket not created");
    // s3s-fs has no lifecycle API: the rule is skipped with a warning, not an error.
    assert!(driver.log().contains("could not add the rule aborting incomplete multipart uploads"), "{}", driver.log());
}

/// No configuration value or secret makes the driver panic (issue 14: a
/// control character in `region`, or a secret file ending in a newline,
/// panicked inside object_store on every request); it answers each with an
/// error or a result and keeps serving.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn hostile_configuration_values_never_crash_the_driver() {
    use ferry_test_servers::Field;
    let s3 = S3sFs::start();
    let secrets = tempfile::tempdir().unwrap();
    let dir = secrets.path().to_str().unwrap();
    let driver = DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", dir)]).await;
    let endpoint = s3.endpoint();
    let fields = [
        Field::Value { name: "endpoint", template: "{}", good: &endpoint },
        Field::Value { name: "insecure", template: "true", good: "" },
        Field::Value { name: "bucket", template: "{}", good: BUCKET },
        Field::Value { name: "region", template: "{}", good: "us-east-1" },
        Field::Value { name: "addressing", template: "{}", good: "path" },
        Field::Value { name: "encryptionOptions", template: "{kmsKeyId: {}}", good: "" },
        Field::Secret { name: "accessKeySecret", good: ACCESS_KEY },
        // `echo value > file`: the newline is trimmed, the good secret works.
        Field::Secret { name: "secretKeySecret", good: "ferry-test-secret\n" },
        Field::Secret { name: "sessionTokenSecret", good: "" },
        Field::Secret { name: "caSecret", good: "" },
    ];
    let sent = ferry_test_servers::survives_hostile_configurations(&driver, "s3", secrets.path(), &fields, "k").await;
    assert!(sent >= 80, "{sent}");
    // The region of the issue: a clear configuration error naming the field.
    let bad = config(&endpoint, ", region: \"eu\\u0001west\"");
    let err = driver.client.list(&Location::new("s3", bad, "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.message().contains("field `region`"), "{err}");
}

/// NOT_FOUND means a missing key, nothing else: an endpoint with a path
/// (`host:port/some/path`) sent every request elsewhere and Save answered
/// NOT_FOUND (issue 14). Argo's endpoint is host[:port]; anything more is
/// refused when the driver connects, naming the field.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn an_endpoint_with_a_path_is_a_configuration_error() {
    let s3 = S3sFs::start();
    let driver = DriverProcess::start(BIN, &env()).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.txt");
    std::fs::write(&src, "x").unwrap();
    for endpoint in
        [format!("{}/some/path", s3.endpoint()), format!("http://{}/p?q=1", s3.endpoint()), "user@host:1".to_string()]
    {
        let at = Location::new("s3", config(&endpoint, ""), "k");
        let err = driver.client.save(&at, &src).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{endpoint}: {err}");
        assert!(err.message().contains("field `endpoint`") && err.message().contains("host[:port]"), "{err}");
    }
    // A trailing slash is still just the host.
    let at = Location::new("s3", config(&format!("{}/", s3.endpoint()), ""), "k");
    driver.client.save(&at, &src).await.unwrap();
}

/// A missing key's message names the key, the bucket and the server's error
/// code, never the raw XML body (issue 14: the body also broke `ferry get`'s
/// table).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn not_found_names_key_bucket_and_server_code_without_the_body() {
    let s3 = S3sFs::start();
    let driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new("s3", config(&s3.endpoint(), ""), "no/such/key");
    let err = driver.client.open_stream(&at).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let m = err.message();
    assert!(m.contains("\"no/such/key\"") && m.contains(BUCKET) && m.contains("NoSuchKey"), "{err}");
    assert!(!m.contains('<') && !m.contains('\n'), "{err}");
}

/// The driver with 5 MiB parts from 5 MiB up, one part in flight: a few MiB
/// make a multipart upload slow enough to hit in the middle.
fn small_parts_env() -> Vec<(&'static str, &'static str)> {
    let mut env = env();
    env.extend([("FERRY_PART_SIZE", "5Mi"), ("FERRY_MULTIPART_THRESHOLD", "5Mi"), ("FERRY_MAX_CONCURRENCY", "1")]);
    env
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn a_multipart_save_survives_a_three_second_outage_in_the_middle() {
    let s3 = S3sFs::start();
    let proxy = Arc::new(FaultProxy::start(s3.port));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("outage.bin");
    let size = 4 * (5 << 20) + 777;
    write_file(&src, size, 4);
    let driver = DriverProcess::start(BIN, &small_parts_env()).await;
    let at = Location::new("s3", config(&proxy.endpoint(), ""), "outage.bin");
    // Connections refused (open ones reset) once the second part is on its way.
    let outage = proxy.outage_after(7 << 20, Duration::from_secs(3));
    let result = driver.client.save(&at, &src).await;
    let took = outage.join().unwrap().elapsed();
    result.unwrap_or_else(|e| panic!("the save did not survive a 3 s outage: {e}\n{}", driver.log()));
    eprintln!("save finished {took:?} after a 3 s outage began");
    assert!(took >= Duration::from_secs(3), "the outage did not hit the save ({took:?})");
    assert!(same_bytes(&src, &s3.object("outage.bin")), "the object is byte-exact");
    assert!(!s3.object(".ferry-uploads/outage.bin.upload.json").exists(), "journal removed after completion");
    assert_eq!(s3.stored_parts(), 0, "no parts left behind");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn a_blackholed_or_refusing_endpoint_fails_every_call_in_bounded_time_naming_host_and_cause() {
    let s3 = S3sFs::start();
    let proxy = FaultProxy::start(s3.port);
    let mut env = env();
    env.extend([("FERRY_CONNECT_TIMEOUT", "1"), ("FERRY_FIRST_BYTE_TIMEOUT", "1"), ("FERRY_RETRY_TIMEOUT", "2")]);
    let driver = DriverProcess::start(BIN, &env).await;
    let at = Location::new("s3", config(&proxy.endpoint(), ""), "small.txt");
    assert_calls_fail_clearly(&driver.client, &at, &proxy, Duration::from_secs(20)).await;
}

/// Unfinished multipart uploads moto holds in [`BUCKET`] (ListMultipartUploads).
fn moto_uploads(moto: &Moto) -> usize {
    let (status, body) = http_request(moto.port, "GET", &format!("/{BUCKET}?uploads"), "");
    assert_eq!(status, 200, "{body}");
    body.matches("<UploadId>").count()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: scripts/test.sh"]
async fn a_save_stream_cancelled_by_the_client_aborts_its_multipart_upload() {
    let moto = Moto::start();
    let (status, body) = http_request(moto.port, "PUT", &format!("/{BUCKET}"), "");
    assert_eq!(status, 200, "{body}");
    let driver = DriverProcess::start(BIN, &small_parts_env()).await;
    let at = Location::new("s3", config(&moto.endpoint(), ""), "cancelled.bin");
    // 12 MiB (above the 5 MiB threshold: a multipart upload with two parts
    // sent), then the source fails: the client cancels the call mid-stream.
    let (tx, rx) = tokio::sync::mpsc::channel::<ferry_sdk::Result<bytes::Bytes>>(1);
    let data = tokio_stream_of(rx);
    let client = driver.client.clone();
    let save = tokio::spawn(async move { client.save_stream(&at, data).await });
    for _ in 0..12 {
        tx.send(Ok(bytes::Bytes::from(vec![7u8; 1 << 20]))).await.unwrap();
    }
    let start = Instant::now();
    while moto_uploads(&moto) == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "no multipart upload started: {}", driver.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(Err(ferry_sdk::Error::other("source failed"))).await.unwrap();
    assert!(save.await.unwrap().is_err(), "a cancelled SaveStream must not succeed");
    let start = Instant::now();
    while moto_uploads(&moto) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the multipart upload of a cancelled SaveStream is still there: {}",
            driver.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = http_request(moto.port, "HEAD", &format!("/{BUCKET}/cancelled.bin"), "");
    assert_eq!(status, 404, "nothing may be saved under the key");
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<ferry_sdk::Result<bytes::Bytes>>) -> ferry_sdk::ByteStream {
    use futures::StreamExt;
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn a_load_whose_body_stalls_fails_after_the_idle_read_timeout_saying_so() {
    let s3 = S3sFs::start();
    let proxy = Arc::new(FaultProxy::start(s3.port));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("stall.bin");
    write_file(&src, 32 << 20, 5);
    std::fs::write(s3.object("stall.bin"), std::fs::read(&src).unwrap()).unwrap();
    // One GET for the whole object; the first-byte timeout far above the
    // idle one, so that only the idle one can end the call this soon. (With
    // time left in the retry bound, object_store asks again for the rest of
    // the object; here the bound is spent when the body stalls.)
    let mut env = env();
    env.extend([
        ("FERRY_MULTIPART_THRESHOLD", "64Mi"),
        ("FERRY_FIRST_BYTE_TIMEOUT", "30"),
        ("FERRY_READ_TIMEOUT", "1"),
        ("FERRY_RETRY_TIMEOUT", "1"),
    ]);
    let driver = DriverProcess::start(BIN, &env).await;
    let at = Location::new("s3", config(&proxy.endpoint(), ""), "stall.bin");
    let p = proxy.clone();
    let stall = std::thread::spawn(move || {
        while p.downstream_bytes() < 1 << 20 {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.set(Fault::Blackhole);
    });
    let start = Instant::now();
    let back = dir.path().join("back.bin");
    let err = tokio::time::timeout(Duration::from_secs(20), driver.client.load(&at, &back))
        .await
        .expect("a stalled body still waits after 20 s")
        .unwrap_err();
    stall.join().unwrap();
    let text = err.to_string();
    eprintln!("load failed in {:?}: {text}", start.elapsed());
    assert!(text.contains("timed out: no data for 1 s"), "{text}");
    assert!(text.contains(&proxy.endpoint()), "{text}");
    assert!(!back.exists(), "a failed load leaves no file behind");
}

/// Saves an object of odd size through `driver` at `endpoint` and checks
/// Stat (a HEAD) and ReadRange (a HEAD, then a ranged GET) against its bytes.
async fn check_sizes_and_ranges(endpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ranged.bin");
    write_file(&src, (3 << 20) + 11, 7);
    let data = std::fs::read(&src).unwrap();
    let driver = DriverProcess::start(BIN, &env()).await;
    let at = Location::new("s3", config(endpoint, ""), "ranges/object.bin");
    driver.client.save(&at, &src).await.unwrap();
    ferry_test_servers::objects::check_sizes_and_ranges(&driver.client, &at, &data, &at.with_key("ranges/missing"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs s3s-fs: scripts/test.sh"]
async fn sizes_and_ranges_come_from_head_and_ranged_gets() {
    let s3 = S3sFs::start();
    check_sizes_and_ranges(&s3.endpoint()).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto: scripts/test.sh"]
async fn sizes_and_ranges_come_from_head_and_ranged_gets_on_moto() {
    let moto = Moto::start();
    let (status, body) = http_request(moto.port, "PUT", &format!("/{BUCKET}"), "");
    assert_eq!(status, 200, "{body}");
    check_sizes_and_ranges(&moto.endpoint()).await;
}
