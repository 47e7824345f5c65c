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
