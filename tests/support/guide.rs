//! The guide's manifests as the tests and the benchmark use them (no other dependencies, so
//! the benchmark can include this file too).

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
