//! Rust bindings for `artifact.ArtifactService`, the gRPC contract Argo Workflows
//! uses to talk to artifact plugins. The source of truth is `proto/artifact.proto`.
//!
//! The generated modules are re-exported unchanged; the driver SDK builds on them.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    tonic::include_proto!("artifact");
}

pub use generated::*;

/// The encoded `FileDescriptorSet` of `artifact.proto`, for gRPC server reflection
/// (so `grpcurl -unix` can call a Ferry driver without the proto file).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/artifact_descriptor.bin"));

/// The fully qualified gRPC service name, as Argo dials it.
pub const SERVICE_NAME: &str = "artifact.ArtifactService";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Guards wire compatibility: every field number and type Argo relies on.
    #[test]
    fn field_numbers_match_argo() {
        use prost_types::FileDescriptorSet;
        let fds = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("valid descriptor set");
        let file = &fds.file[0];
        assert_eq!(file.package.as_deref(), Some("artifact"));
        let fields = |msg: &str| -> Vec<(String, i32, i32, i32)> {
            file.message_type
                .iter()
                .find(|m| m.name.as_deref() == Some(msg))
                .unwrap_or_else(|| panic!("message {msg} missing"))
                .field
                .iter()
                .map(|f| (f.name.clone().unwrap(), f.number.unwrap(), f.r#type.unwrap(), f.label.unwrap()))
                .collect()
        };
        // (name, number, type, label) with descriptor.proto's enum values:
        // TYPE_BOOL=8, TYPE_STRING=9, TYPE_MESSAGE=11, TYPE_BYTES=12, TYPE_INT32=5;
        // LABEL_OPTIONAL=1, LABEL_REPEATED=3.
        let s = |n: &str, i| (n.to_string(), i, 9, 1);
        let b = |n: &str, i| (n.to_string(), i, 8, 1);
        let m = |n: &str, i| (n.to_string(), i, 11, 1);
        assert_eq!(
            fields("PluginArtifact"),
            vec![s("name", 1), s("configuration", 2), ("connection_timeout_seconds".into(), 3, 5, 1), s("key", 4)]
        );
        assert_eq!(
            fields("Artifact"),
            vec![
                s("name", 1),
                s("path", 2),
                ("mode".into(), 3, 5, 1),
                s("from", 4),
                m("plugin", 5),
                b("optional", 6),
                s("sub_path", 7),
                b("recurse_mode", 8),
                s("from_expression", 9),
                b("deleted", 10)
            ]
        );
        assert_eq!(fields("LoadArtifactRequest"), vec![m("input_artifact", 1), s("path", 2)]);
        for resp in ["LoadArtifactResponse", "SaveArtifactResponse", "DeleteArtifactResponse"] {
            assert_eq!(fields(resp), vec![b("success", 1), s("error", 2)], "{resp}");
        }
        assert_eq!(fields("OpenStreamRequest"), vec![m("artifact", 1)]);
        assert_eq!(fields("OpenStreamResponse"), vec![("data".into(), 1, 12, 1), b("is_end", 2), s("error", 3)]);
        assert_eq!(fields("SaveArtifactRequest"), vec![s("path", 1), m("output_artifact", 2)]);
        for req in ["DeleteArtifactRequest", "ListObjectsRequest", "IsDirectoryRequest"] {
            assert_eq!(fields(req), vec![m("artifact", 1)], "{req}");
        }
        assert_eq!(fields("ListObjectsResponse"), vec![("objects".into(), 1, 9, 3), s("error", 2)]);
        assert_eq!(fields("IsDirectoryResponse"), vec![b("is_directory", 1), s("error", 2)]);
        assert_eq!(fields("SaveStreamArtifactRequest"), vec![m("output_artifact", 1), ("chunk".into(), 2, 12, 1)]);
        assert_eq!(fields("GetCapabilitiesRequest"), vec![]);
        assert_eq!(fields("GetCapabilitiesResponse"), vec![b("supports_save_stream", 1)]);

        let svc = &file.service[0];
        assert_eq!(svc.name.as_deref(), Some("ArtifactService"));
        let methods: Vec<_> = svc
            .method
            .iter()
            .map(|m| {
                (
                    m.name.clone().unwrap(),
                    m.input_type.clone().unwrap(),
                    m.output_type.clone().unwrap(),
                    m.client_streaming.unwrap_or(false),
                    m.server_streaming.unwrap_or(false),
                )
            })
            .collect();
        let rpc = |n: &str, i: &str, o: &str, cs, ss| {
            (n.to_string(), format!(".artifact.{i}"), format!(".artifact.{o}"), cs, ss)
        };
        assert_eq!(
            methods,
            vec![
                rpc("Load", "LoadArtifactRequest", "LoadArtifactResponse", false, false),
                rpc("OpenStream", "OpenStreamRequest", "OpenStreamResponse", false, true),
                rpc("Save", "SaveArtifactRequest", "SaveArtifactResponse", false, false),
                rpc("Delete", "DeleteArtifactRequest", "DeleteArtifactResponse", false, false),
                rpc("ListObjects", "ListObjectsRequest", "ListObjectsResponse", false, false),
                rpc("IsDirectory", "IsDirectoryRequest", "IsDirectoryResponse", false, false),
                rpc("SaveStream", "SaveStreamArtifactRequest", "SaveArtifactResponse", true, false),
                rpc("GetCapabilities", "GetCapabilitiesRequest", "GetCapabilitiesResponse", false, false),
            ]
        );
    }
}
