//! Rust bindings for `artifact.ArtifactService`, the gRPC contract Argo Workflows
//! uses to talk to artifact plugins, and for [`ferry_v1`], Ferry's own optional
//! extension service. The sources of truth are `proto/artifact.proto` and
//! `proto/ferry_object.proto`.
//!
//! The generated modules are re-exported unchanged; the driver SDK builds on them.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    pub mod artifact {
        tonic::include_proto!("artifact");
    }
    // Nested as the package is, so the generated `super::super::artifact`
    // paths of `ferry.v1` resolve.
    pub mod ferry {
        pub mod v1 {
            tonic::include_proto!("ferry.v1");
        }
    }
}

pub use generated::artifact::*;

/// `ferry.v1.ObjectService`: an object's size (`Stat`) and a byte range of it
/// (`ReadRange`), for servers that stream artifacts over HTTP. Ferry's own
/// addition, in its own package: Argo never calls it, and a driver that does
/// not serve it answers `UNIMPLEMENTED`.
pub mod ferry_v1 {
    pub use crate::generated::ferry::v1::*;

    /// The fully qualified gRPC service name.
    pub const SERVICE_NAME: &str = "ferry.v1.ObjectService";
}

/// The encoded `FileDescriptorSet` of `artifact.proto` and `ferry_object.proto`,
/// for gRPC server reflection (so `grpcurl -unix` can call a Ferry driver's
/// services without the proto files).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/artifact_descriptor.bin"));

/// The fully qualified gRPC service name, as Argo dials it.
pub const SERVICE_NAME: &str = "artifact.ArtifactService";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_types::{FileDescriptorProto, FileDescriptorSet};

    fn file<'a>(fds: &'a FileDescriptorSet, name: &str) -> &'a FileDescriptorProto {
        fds.file.iter().find(|f| f.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("{name} missing"))
    }

    /// (name, number, type, label) of each field of the message `msg`.
    fn fields_of(file: &FileDescriptorProto, msg: &str) -> Vec<(String, i32, i32, i32)> {
        file.message_type
            .iter()
            .find(|m| m.name.as_deref() == Some(msg))
            .unwrap_or_else(|| panic!("message {msg} missing"))
            .field
            .iter()
            .map(|f| (f.name.clone().unwrap(), f.number.unwrap(), f.r#type.unwrap(), f.label.unwrap()))
            .collect()
    }

    type Rpc = (String, String, String, bool, bool);

    /// (name, input, output, client streaming, server streaming) of each
    /// method of the file's one service, which is named `service`.
    fn methods_of(file: &FileDescriptorProto, service: &str) -> Vec<Rpc> {
        assert_eq!(file.service.len(), 1, "one service in {:?}", file.name);
        let svc = &file.service[0];
        assert_eq!(svc.name.as_deref(), Some(service));
        svc.method
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
            .collect()
    }

    /// An expected method of package `pkg`.
    fn rpc(pkg: &str, name: &str, input: &str, output: &str, client_streaming: bool, server_streaming: bool) -> Rpc {
        (name.to_string(), format!(".{pkg}.{input}"), format!(".{pkg}.{output}"), client_streaming, server_streaming)
    }

    /// Guards wire compatibility: every field number and type Argo relies on.
    #[test]
    fn field_numbers_match_argo() {
        let fds = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("valid descriptor set");
        let file = file(&fds, "artifact.proto");
        assert_eq!(file.package.as_deref(), Some("artifact"));
        let fields = |msg: &str| fields_of(file, msg);
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

        let rpc = |n: &str, i: &str, o: &str, cs, ss| rpc("artifact", n, i, o, cs, ss);
        assert_eq!(
            methods_of(file, "ArtifactService"),
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

    /// Ferry's extension lives in its own package and file: Argo's package
    /// keeps exactly its own messages and its one service.
    #[test]
    fn ferry_extension_is_its_own_package() {
        let fds = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("valid descriptor set");
        let ext = file(&fds, "ferry_object.proto");
        assert_eq!(ext.package.as_deref(), Some("ferry.v1"));
        assert_eq!(ext.dependency, vec!["artifact.proto".to_string()]);
        assert_eq!(
            methods_of(ext, "ObjectService"),
            vec![
                rpc("ferry.v1", "Stat", "StatRequest", "StatResponse", false, false),
                rpc("ferry.v1", "ReadRange", "ReadRangeRequest", "ReadRangeResponse", false, true),
            ]
        );
        // (name, number, type, label): TYPE_UINT64=4, TYPE_MESSAGE=11,
        // TYPE_BYTES=12; LABEL_OPTIONAL=1.
        let fields = |msg: &str| fields_of(ext, msg);
        let u = |n: &str, i| (n.to_string(), i, 4, 1);
        let artifact = ("artifact".to_string(), 1, 11, 1);
        assert_eq!(fields("StatRequest"), vec![artifact.clone()]);
        assert_eq!(fields("StatResponse"), vec![u("size", 1)]);
        assert_eq!(fields("ReadRangeRequest"), vec![artifact, u("offset", 2), u("length", 3)]);
        assert_eq!(fields("ReadRangeResponse"), vec![("data".into(), 1, 12, 1)]);
        let argo_type = |msg: &str| {
            let m = ext.message_type.iter().find(|m| m.name.as_deref() == Some(msg)).unwrap();
            m.field[0].type_name.clone()
        };
        assert_eq!(argo_type("ReadRangeRequest").as_deref(), Some(".artifact.Artifact"), "Argo's Artifact, reused");

        // Nothing of Ferry's leaked into Argo's package.
        let argo = file(&fds, "artifact.proto");
        assert!(argo.dependency.is_empty());
        assert_eq!(argo.service.len(), 1);
        assert_eq!(argo.message_type.len(), 17);
        let in_artifact = fds.file.iter().filter(|f| f.package.as_deref() == Some("artifact")).count();
        assert_eq!(in_artifact, 1, "only artifact.proto is package artifact");
        assert_eq!(ferry_v1::SERVICE_NAME, "ferry.v1.ObjectService");
    }
}
