//! The guide's stack as the tests and the benchmarks use it.

/// The guide's Image builds the MCP server from source; these tests push stand-in images
/// instead (as CI would), so the Image tracks `latest`.
pub fn track_latest(text: &str) -> String {
    let Some(start) = text.find("  build:\n") else {
        return text.to_string();
    };
    let end_marker = "  movingTag: latest\n";
    let end = text[start..]
        .find(end_marker)
        .map(|i| start + i + end_marker.len())
        .expect("the guide's Image ends with movingTag: latest");
    format!("{}  tag: latest\n{}", &text[..start], &text[end..])
}

/// A small stand-in image manifest, as CI would push it; its one layer is unique to `salt`
/// (the emulator derives the image digest from the layer digests).
pub fn standin_manifest(salt: &str) -> String {
    use agentcore_controller::oci::layout::sha256_digest;
    let config = serde_json::json!({"salt": salt}).to_string();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": sha256_digest(config.as_bytes()),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": salt.len(),
            "digest": sha256_digest(salt.as_bytes()),
        }]
    })
    .to_string()
}

/// The guide's stack (after [`track_latest`]) with an Image that pushes `layout` itself (an
/// OCI layout, e.g. `image.tar`, relative to the manifests) and moves `latest` to it, so
/// one `apply` converges from nothing.
pub fn push_layout(text: &str, layout: &str) -> String {
    text.replace(
        "  tag: latest\n",
        &format!("  ociLayout: {layout}\n  movingTag: latest\n"),
    )
}

/// Pack a one-file context (`server.py` holding `source`) with `scripts/oci-pack` as an OCI
/// layout tar archive at `out` (linux/arm64, deterministic); returns the manifest digest.
pub fn pack_standin_layout(source: &str, out: &std::path::Path) -> String {
    let ctx = tempfile::tempdir().expect("context dir");
    std::fs::write(ctx.path().join("server.py"), source).expect("write context");
    let o = std::process::Command::new("python3")
        .arg(crate::repo_root().join("scripts/oci-pack"))
        .args(["--format", "tar"])
        .arg(ctx.path())
        .arg(out)
        .output()
        .expect("run oci-pack");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "oci-pack failed: {err}");
    err.split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("digest in oci-pack's output")
        .to_string()
}
