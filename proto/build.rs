//! Compiles `artifact.proto` with `protox`, a pure-Rust compiler, so no system
//! `protoc` is needed on any machine that builds Ferry.
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=artifact.proto");
    let fds = protox::compile(["artifact.proto"], ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("artifact_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // `bytes` fields as `Bytes`: stream frames are handed on without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
