//! ferry-driver-gcs as a separate process against fake-gcs-server (GCS's JSON
//! API): uploads resumed by another process, a changed source sent again,
//! Delete cancelling unfinished uploads, large ranged downloads, and the
//! three ways of authenticating, outages and blackholed endpoints (through a
//! FaultProxy), and Ferry's ObjectService (metadata sizes, ranged reads).

use ferry_sdk::ErrorKind;
use ferry_sdk::client::Location;
use ferry_test_servers::fault::assert_calls_fail_clearly;
use ferry_test_servers::{BUCKET, DriverProcess, FakeGcs, FaultProxy, free_port};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-gcs");
const CHUNK: u64 = 8 << 20;

/// fake-gcs-server finishes a half-uploaded object when asked for a session's
/// status (its issue #2354), so resumes trust the journal here.
const ENV: [(&str, &str); 2] = [("FERRY_GCS_STATUS_QUERY", "false"), ("FERRY_GCS_CHUNK_SIZE", "8Mi")];

fn config(gcs: &FakeGcs) -> String {
    format!("{{endpoint: '{}', anonymous: true, bucket: {BUCKET}}}", gcs.endpoint())
}

fn server() -> FakeGcs {
    let gcs = FakeGcs::start();
    gcs.create_bucket(BUCKET);
    gcs
}

/// Pseudo-random bytes (an LCG seeded per file), so misplaced chunks show.
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
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// Chunks the upload journal of `key` records (0 when there is none).
fn journaled_chunks(gcs: &FakeGcs, key: &str) -> usize {
    let path = format!("/storage/v1/b/{BUCKET}/o/{}?alt=media", encode(&format!(".ferry-uploads/{key}.upload.json")));
    let (status, body) = gcs.get(&path);
    if status != 200 {
        return 0;
    }
    serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["crcs"].as_array().map(Vec::len)).unwrap_or(0)
}

fn object_exists(gcs: &FakeGcs, name: &str) -> bool {
    gcs.get(&format!("/storage/v1/b/{BUCKET}/o/{}", encode(name))).0 == 200
}

fn encode(name: &str) -> String {
    name.replace('/', "%2F")
}

/// Starts a save of `src` in its own driver process and kills that process
/// once the journal records `chunks` chunks.
async fn killed_save(gcs: &FakeGcs, key: &str, src: &Path, chunks: usize) {
    let mut first = DriverProcess::start(BIN, &ENV).await;
    let at = Location::new("gcs", config(gcs), key);
    let client = first.client.clone();
    let src_owned = src.to_path_buf();
    let save = tokio::spawn(async move { client.save(&at, &src_owned).await });
    let start = Instant::now();
    while journaled_chunks(gcs, key) < chunks {
        assert!(!save.is_finished(), "the save finished before it could be interrupted");
        assert!(start.elapsed() < Duration::from_secs(120), "the journal never reached {chunks} chunks");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    let _ = save.await;
    assert!(!object_exists(gcs, key), "a killed upload must not leave an object");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn a_killed_upload_is_finished_by_another_process() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    write_file(&src, 25 * CHUNK + 12345, 7);
    killed_save(&gcs, "wf/big.bin", &src, 6).await;

    let second = DriverProcess::start(BIN, &ENV).await;
    let at = Location::new("gcs", config(&gcs), "wf/big.bin");
    second.client.save(&at, &src).await.unwrap();
    assert_eq!(journaled_chunks(&gcs, "wf/big.bin"), 0, "the journal must be gone once the object is whole");

    // The emulator appends chunks whatever their offsets, so a chunk stored
    // after the journal's last write makes the object too long; the CRC32C
    // and size checks catch it and the upload starts over. Either way the
    // object is exact; which way it went is in the log.
    let log = second.log();
    assert!(
        log.contains("resumed an interrupted upload") || log.contains("uploading again from the start"),
        "the second process neither resumed nor restarted: {log}"
    );
    let back = dir.path().join("back.bin");
    second.client.load(&at, &back).await.unwrap();
    assert!(same_bytes(&src, &back), "the object differs from the file");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn a_changed_source_is_sent_again_in_full() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let size = 12 * CHUNK;
    write_file(&src, size, 1);
    killed_save(&gcs, "changed.bin", &src, 3).await;
    // Same size, other bytes: the journaled chunks no longer match.
    write_file(&src, size, 2);

    let second = DriverProcess::start(BIN, &ENV).await;
    let at = Location::new("gcs", config(&gcs), "changed.bin");
    second.client.save(&at, &src).await.unwrap();
    assert!(second.log().contains("the file changed since the interrupted upload"), "{}", second.log());
    assert!(!second.log().contains("resumed an interrupted upload"));
    let back = dir.path().join("back.bin");
    second.client.load(&at, &back).await.unwrap();
    assert!(same_bytes(&src, &back));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn delete_cancels_unfinished_uploads_of_what_it_deletes() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    write_file(&src, 10 * CHUNK, 3);
    killed_save(&gcs, "run/out/big.bin", &src, 2).await;

    let driver = DriverProcess::start(BIN, &ENV).await;
    // The file key `run` is one object: uploads under run/ are not its own.
    driver.client.delete(&Location::new("gcs", config(&gcs), "run")).await.unwrap();
    assert!(journaled_chunks(&gcs, "run/out/big.bin") > 0, "a file Delete cancelled an upload under key/");
    driver.client.delete(&Location::new("gcs", config(&gcs), "run/")).await.unwrap();
    assert_eq!(journaled_chunks(&gcs, "run/out/big.bin"), 0, "Delete must remove the journal");
    let (_, listing) = gcs.get(&format!("/storage/v1/b/{BUCKET}/o?prefix=.ferry-uploads%2F"));
    assert!(!listing.contains("run/out"), "{listing}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn large_objects_come_down_in_ranges_byte_exact() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    write_file(&src, 9 * CHUNK + 777, 11);
    let driver = DriverProcess::start(BIN, &ENV).await;
    let at = Location::new("gcs", config(&gcs), "ranged/big.bin");
    driver.client.save(&at, &src).await.unwrap();
    let back = dir.path().join("back.bin");
    driver.client.load(&at, &back).await.unwrap();
    assert!(same_bytes(&src, &back));
    // The stored CRC32C is the file's, so the whole-object check had a real value to compare.
    let (_, meta) = gcs.get(&format!("/storage/v1/b/{BUCKET}/o/{}", encode("ranged/big.bin")));
    let stored: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let want = crc32c::crc32c(&std::fs::read(&src).unwrap());
    assert_eq!(stored["crc32c"].as_str().unwrap(), ferry_driver_gcs::api::encode_crc(want));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn sizes_come_from_metadata_and_ranges_from_ranged_reads() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ranged.bin");
    write_file(&src, (3 << 20) + 11, 13);
    let data = std::fs::read(&src).unwrap();
    let driver = DriverProcess::start(BIN, &ENV).await;
    let at = Location::new("gcs", config(&gcs), "ranges/object.bin");
    driver.client.save(&at, &src).await.unwrap();
    ferry_test_servers::objects::check_sizes_and_ranges(&driver.client, &at, &data, &at.with_key("ranges/missing"))
        .await;
    // The whole object as a range: checked against its stored CRC32C too.
    assert!(ferry_test_servers::objects::read_range(&driver.client, &at, 0, u64::MAX).await == data);
    let empty = at.with_key("ranges/empty");
    let nothing = dir.path().join("empty");
    std::fs::write(&nothing, b"").unwrap();
    driver.client.save(&empty, &nothing).await.unwrap();
    assert_eq!(driver.client.stat(&empty).await.unwrap(), Some(0));
    assert!(ferry_test_servers::objects::read_range(&driver.client, &empty, 0, 10).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn a_missing_object_is_not_found_and_a_missing_bucket_names_itself() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let driver = DriverProcess::start(BIN, &ENV).await;
    let err = driver.client.load(&Location::new("gcs", config(&gcs), "nope"), &dir.path().join("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let other = format!("{{endpoint: '{}', anonymous: true, bucket: no-such-bucket}}", gcs.endpoint());
    let src = dir.path().join("f");
    std::fs::write(&src, b"x").unwrap();
    let err = driver.client.save(&Location::new("gcs", &other, "k"), &src).await.unwrap_err();
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
}

/// A service-account key made here (no Google account involved): tokens are
/// self-signed JWTs, so nothing leaves the machine; the emulator ignores them.
fn service_account_key(dir: &Path) -> String {
    let pem = dir.join("key.pem");
    let status = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&pem)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is missing");
    assert!(status.success());
    serde_json::json!({
        "type": "service_account",
        "project_id": "ferry-test",
        "private_key_id": "0123456789abcdef",
        "private_key": std::fs::read_to_string(&pem).unwrap(),
        "client_email": "ferry@ferry-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn a_service_account_key_and_the_emulator_variable_work() {
    let gcs = server();
    let dir = tempfile::tempdir().unwrap();
    let key = service_account_key(dir.path());
    let pem_body = key.split("-----BEGIN PRIVATE KEY-----").nth(1).unwrap()[..64].replace("\\n", "");
    let host = format!("127.0.0.1:{}", gcs.port);
    let mut env = ENV.to_vec();
    env.push(("FERRY_SECRET_GCS_SA_KEYJSON", &key));
    env.push(("STORAGE_EMULATOR_HOST", &host));
    let driver = DriverProcess::start(BIN, &env).await;
    let src = dir.path().join("f.txt");
    std::fs::write(&src, b"hello gcs").unwrap();

    let keyed = format!(
        "{{endpoint: '{}', bucket: {BUCKET}, serviceAccountKeySecret: {{name: gcs-sa, key: keyJson}}}}",
        gcs.endpoint()
    );
    let at = Location::new("gcs", &keyed, "auth/keyed.txt");
    driver.client.save(&at, &src).await.unwrap();
    // Neither an endpoint nor `anonymous`: STORAGE_EMULATOR_HOST decides, as in Google's libraries.
    let emulated = format!("{{bucket: {BUCKET}}}");
    let back = dir.path().join("back.txt");
    driver.client.load(&Location::new("gcs", &emulated, "auth/keyed.txt"), &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"hello gcs");
    assert!(!driver.log().contains(&pem_body), "the private key reached the log");
}

/// No configuration value or secret makes the driver panic; it answers
/// each with an error or a result and keeps serving (issue 14).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn hostile_configuration_values_never_crash_the_driver() {
    use ferry_test_servers::Field;
    let gcs = server();
    let secrets = tempfile::tempdir().unwrap();
    let dir = secrets.path().to_str().unwrap();
    let driver = DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", dir)]).await;
    let endpoint = gcs.endpoint();
    let fields = [
        Field::Value { name: "endpoint", template: "{}", good: &endpoint },
        Field::Value { name: "anonymous", template: "true", good: "" },
        Field::Value { name: "bucket", template: "{}", good: BUCKET },
        Field::Secret { name: "serviceAccountKeySecret", good: "" },
    ];
    let sent = ferry_test_servers::survives_hostile_configurations(&driver, "gcs", secrets.path(), &fields, "k").await;
    assert!(sent >= 30, "{sent}");
}

fn config_at(endpoint: &str) -> String {
    format!("{{endpoint: 'http://{endpoint}', anonymous: true, bucket: {BUCKET}}}")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn a_resumable_upload_survives_a_three_second_outage_in_the_middle() {
    let port = free_port();
    let proxy = Arc::new(FaultProxy::start(port));
    let gcs = FakeGcs::start_at(port, Some(proxy.port));
    gcs.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("outage.bin");
    write_file(&src, 2 * CHUNK + 4321, 7);
    let driver = DriverProcess::start(BIN, &ENV).await;
    let at = Location::new("gcs", config_at(&proxy.endpoint()), "outage.bin");
    // Connections refused (open ones reset) once the second part is on its way.
    let outage = proxy.outage_after(CHUNK + (1 << 20), Duration::from_secs(3));
    let result = driver.client.save(&at, &src).await;
    let took = outage.join().unwrap().elapsed();
    result.unwrap_or_else(|e| panic!("the save did not survive a 3 s outage: {e}\n{}", driver.log()));
    eprintln!("save finished {took:?} after a 3 s outage began");
    assert!(took >= Duration::from_secs(3), "the outage did not hit the save ({took:?})");
    let back = dir.path().join("back.bin");
    driver.client.load(&at, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap(), "the object is byte-exact");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
async fn a_blackholed_or_refusing_endpoint_fails_every_call_in_bounded_time_naming_host_and_cause() {
    let gcs = server();
    let proxy = FaultProxy::start(gcs.port);
    let mut env = ENV.to_vec();
    env.extend([("FERRY_CONNECT_TIMEOUT", "1"), ("FERRY_FIRST_BYTE_TIMEOUT", "1"), ("FERRY_RETRY_TIMEOUT", "2")]);
    let driver = DriverProcess::start(BIN, &env).await;
    let at = Location::new("gcs", config_at(&proxy.endpoint()), "small.txt");
    assert_calls_fail_clearly(&driver.client, &at, &proxy, Duration::from_secs(20)).await;
}
