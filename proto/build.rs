//! Compiles `artifact.proto` (Argo's contract) and `ferry_object.proto`
//! (Ferry's extension) with `protox`, a pure-Rust compiler, so no system
//! `protoc` is needed on any machine that builds Ferry.
use prost::Message;

/// Argo's contract first: the wire test reads it as the set's first file.
const PROTOS: [&str; 2] = ["artifact.proto", "ferry_object.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // One set for both files: server reflection must describe every service
    // a driver serves, so grpcurl can call either.
    std::fs::write(out.join("artifact_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // `bytes` fields as `Bytes`: stream frames are handed on without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
