//! Argo's names for what a run creates: pods, generated workflow names and
//! driver containers.

/// 32-bit FNV-1a, the hash Argo uses in pod names.
fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Argo's pod name (v2 naming): `<workflow>-<template>-<fnv32a(node name)>`,
/// `<workflow>-<fnv32a(node name)>` for a node without a template name (an
/// inline template's), or the workflow's own name for a workflow that is a
/// single pod.
pub fn pod_name(workflow: &str, template: &str, node: &str) -> String {
    if workflow == node {
        return workflow.to_string();
    }
    let hash = fnv32a(node);
    let mut prefix = if template.is_empty() { workflow.to_string() } else { format!("{workflow}-{template}") };
    // Kubernetes names are at most 253 characters; Argo keeps room for the hash.
    if prefix.len() > 242 {
        let mut cut = 242;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}-{hash}")
}

/// Argo's node id (`status.nodes` key), as argo-server's artifact URLs carry
/// it: the workflow's name for its root node, else `<workflow>-<fnv32a(node name)>`.
pub fn node_id(workflow: &str, node: &str) -> String {
    if workflow == node { workflow.to_string() } else { format!("{workflow}-{}", fnv32a(node)) }
}

/// A random lowercase suffix for `generateName`, as the API server adds.
pub fn random_suffix() -> String {
    let id = uuid::Uuid::new_v4();
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    id.as_bytes().iter().take(5).map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect()
}

/// Argo's container-name prefix of a driver that loads a step's inputs
/// (an init container): `init-artifact-<driver>`.
pub const INIT_DRIVER_PREFIX: &str = "init-artifact-";

/// Argo's container-name prefix of a driver that saves a step's outputs
/// (a sidecar): `artifact-plugin-<driver>`.
pub const SIDECAR_DRIVER_PREFIX: &str = "artifact-plugin-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_follow_argo_v2() {
        assert_eq!(pod_name("wf", "main", "wf"), "wf");
        let p = pod_name("hello-abc", "print", "hello-abc[0].print");
        assert!(p.starts_with("hello-abc-print-"), "{p}");
        assert_eq!(p, pod_name("hello-abc", "print", "hello-abc[0].print"));
        assert_ne!(p, pod_name("hello-abc", "print", "hello-abc[1].print"));
        // An inline template has no name: Argo leaves the segment out.
        let inline = pod_name("hello-abc", "", "hello-abc[0].print");
        assert_eq!(inline, format!("hello-abc-{}", fnv32a("hello-abc[0].print")));
    }

    #[test]
    fn node_ids_are_argos_status_keys() {
        assert_eq!(node_id("wf", "wf"), "wf");
        // FNV-1a's published test vector: "a" hashes to 0xe40c292c.
        assert_eq!(node_id("wf", "a"), format!("wf-{}", 0xe40c_292c_u32));
    }
}
