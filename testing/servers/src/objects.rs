//! What every driver serving `ferry.v1.ObjectService` must answer, checked
//! the same way for each: the size is OpenStream's byte count, ranges are
//! exact slices clamped to the object's end, a missing key is NOT_FOUND.

use ferry_sdk::ErrorKind;
use ferry_sdk::client::{DriverClient, Location};
use futures::StreamExt;

/// The bytes ReadRange yields for `offset..offset + length`; panics when the
/// driver does not offer it or the stream fails.
pub async fn read_range(client: &DriverClient, at: &Location, offset: u64, length: u64) -> Vec<u8> {
    let mut data = client
        .open_range(at, offset, length)
        .await
        .unwrap_or_else(|e| panic!("ReadRange {offset}+{length} of {}: {e}", at.key))
        .unwrap_or_else(|| panic!("the driver does not serve ferry.v1.ObjectService"));
    let mut out = Vec::new();
    while let Some(chunk) = data.next().await {
        out.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("ReadRange {offset}+{length} of {}: {e}", at.key)));
    }
    out
}

/// Checks Stat and ReadRange of the object at `at`, which holds `data` (at
/// least 20 bytes), and of the missing key `missing`.
pub async fn check_sizes_and_ranges(client: &DriverClient, at: &Location, data: &[u8], missing: &Location) {
    assert!(data.len() >= 20, "the object must have at least 20 bytes");
    let len = data.len() as u64;
    assert_eq!(client.stat(at).await.unwrap(), Some(len), "Stat of {}", at.key);
    let slice = |a: u64, b: u64| &data[a as usize..b as usize];
    let mid = len / 3;
    let cases: [(&str, u64, u64, &[u8]); 7] = [
        ("start", 0, 10, slice(0, 10)),
        ("middle", mid, len / 2, slice(mid, mid + len / 2)),
        ("end", len - 10, 10, slice(len - 10, len)),
        ("past the end, clamped", len - 10, 1000, slice(len - 10, len)),
        ("at the end", len, 5, &[]),
        ("past the end", len + 100, 5, &[]),
        ("empty", 3, 0, &[]),
    ];
    for (what, offset, length, want) in cases {
        let got = read_range(client, at, offset, length).await;
        assert!(got == want, "{what} ({offset}+{length}): {} bytes, wanted {}", got.len(), want.len());
    }
    let err = client.stat(missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "Stat of a missing key: {err}");
    let err = client.open_range(missing, 0, 10).await.err().expect("ReadRange of a missing key fails");
    assert_eq!(err.kind(), ErrorKind::NotFound, "ReadRange of a missing key: {err}");
}
