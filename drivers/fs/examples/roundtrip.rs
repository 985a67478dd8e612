//! Saves a file through a running driver, loads it back, streams it and lists
//! it, checking every byte: `roundtrip SOCKET CONFIGURATION FILE`.

use anyhow::Context;
use ferry_sdk::client::{DriverClient, Location};
use futures::StreamExt;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, configuration, file] = args.as_slice() else {
        anyhow::bail!("usage: roundtrip SOCKET CONFIGURATION FILE");
    };
    let original = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let started = Instant::now();
    let client = DriverClient::connect(socket, Duration::from_secs(10)).await?;
    println!("connected to {socket} in {:?}", started.elapsed());

    let name = std::path::Path::new(file).file_name().unwrap_or_default().to_string_lossy().into_owned();
    let at = Location::new("fs", configuration.clone(), format!("demo/roundtrip/{name}"));
    let t = Instant::now();
    client.save(&at, std::path::Path::new(file)).await?;
    println!("Save    {file} -> key {} ({} bytes) in {:?}", at.key, original.len(), t.elapsed());

    let out = std::env::temp_dir().join(format!("ferry-roundtrip-{}.tmp", std::process::id()));
    let t = Instant::now();
    client.load(&at, &out).await?;
    let loaded = std::fs::read(&out)?;
    std::fs::remove_file(&out)?;
    anyhow::ensure!(loaded == original, "Load returned different bytes");
    println!("Load    key {} -> {} in {:?}: identical", at.key, out.display(), t.elapsed());

    let t = Instant::now();
    let mut stream = client.open_stream(&at).await?;
    let mut streamed = Vec::with_capacity(original.len());
    while let Some(chunk) = stream.next().await {
        streamed.extend_from_slice(&chunk?);
    }
    anyhow::ensure!(streamed == original, "OpenStream returned different bytes");
    println!("Stream  key {} in {:?}: identical", at.key, t.elapsed());

    println!("List    demo/roundtrip -> {:?}", client.list(&at.with_key("demo/roundtrip")).await?);
    client.delete(&at.with_key("demo/roundtrip")).await?;
    println!("Delete  demo/roundtrip -> gone: {}", client.list(&at.with_key("demo/roundtrip")).await.is_err());
    println!("round trip OK");
    Ok(())
}
