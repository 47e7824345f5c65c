//! `rollout`: a runtime's versions and the endpoints that serve them, and moving an
//! endpoint from one version to another through its manifest.
//!
//! An endpoint is moved by editing the RuntimeEndpoint's `version:` in the manifest,
//! never behind the manifests' back (the controller would move it back at its next
//! resync): `promote` and `undo` print the one-line edit, or make it with `--write`, and
//! `apply` (or the daemon, or a commit for a daemon that pulls from git) carries it out.

pub mod edit;

use std::path::Path;

use aws_sdk_bedrockagentcorecontrol::types::ContainerConfiguration;
use aws_smithy_types::date_time::Format;
use serde::Serialize;

use crate::aws::Aws;
use crate::commands::{
    Common, OutputFormat, connect, deployed_runtime, exit, find, load, runtime_name,
};
use crate::kinds::agent_runtime::versions;
use crate::kinds::runtime_endpoint::DEFAULT_ENDPOINT;
use crate::manifest::{ManifestSet, Object};

/// One version of a runtime.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRow {
    pub version: u32,
    pub status: String,
    /// When the version was made (RFC 3339).
    pub created: String,
    /// The container image it runs.
    pub image: String,
    /// The endpoints serving it (or moving to it: `name (target)`).
    pub endpoints: Vec<String>,
}

/// One endpoint of a runtime.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRow {
    pub name: String,
    pub live_version: Option<String>,
    pub target_version: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub runtime: String,
    pub arn: String,
    pub latest: u32,
    /// Newest first.
    pub versions: Vec<VersionRow>,
    pub endpoints: Vec<EndpointRow>,
}

/// The short form of an image for a table: its digest's first 12 hex digits, or its tag.
pub fn short_image(uri: &str) -> String {
    if let Some((_, digest)) = uri.split_once("@sha256:") {
        return format!("sha256:{}", digest.chars().take(12).collect::<String>());
    }
    uri.rsplit('/').next().unwrap_or(uri).to_string()
}

/// Read a runtime's versions and endpoints from AgentCore.
pub async fn read(aws: &Aws, runtime: &str) -> Result<Rollout, String> {
    let rt = deployed_runtime(aws, runtime)
        .await?
        .ok_or_else(|| format!("runtime {runtime} does not exist (apply the manifests first)"))?;
    let id = rt.agent_runtime_id().to_string();
    let client = &aws.agentcore;

    let mut endpoints: Vec<EndpointRow> = versions::list_endpoints(client, &id)
        .await
        .map_err(|e| e.message)?
        .iter()
        .map(|e| EndpointRow {
            name: e.name().to_string(),
            live_version: e.live_version().map(str::to_string),
            target_version: e
                .target_version()
                .filter(|t| Some(*t) != e.live_version())
                .map(str::to_string),
            status: e.status().as_str().to_string(),
        })
        .collect();
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));

    let mut rows = Vec::new();
    for v in versions::list_versions(client, &id)
        .await
        .map_err(|e| e.message)?
    {
        let Ok(number) = v.agent_runtime_version().parse::<u32>() else {
            continue;
        };
        // The image is in the version's own configuration, not in the summary.
        let image = client
            .get_agent_runtime()
            .agent_runtime_id(&id)
            .agent_runtime_version(v.agent_runtime_version())
            .send()
            .await
            .ok()
            .and_then(|got| {
                got.agent_runtime_artifact()
                    .and_then(|a| a.as_container_configuration().ok())
                    .map(ContainerConfiguration::container_uri)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let here = number.to_string();
        let endpoints_here = endpoints
            .iter()
            .filter_map(|e| {
                if e.live_version.as_deref() == Some(&here) {
                    Some(e.name.clone())
                } else if e.target_version.as_deref() == Some(&here) {
                    Some(format!("{} (target)", e.name))
                } else {
                    None
                }
            })
            .collect();
        rows.push(VersionRow {
            version: number,
            status: v.status().as_str().to_string(),
            created: v
                .last_updated_at()
                .fmt(Format::DateTime)
                .unwrap_or_default(),
            image,
            endpoints: endpoints_here,
        });
    }
    let mut versions = rows;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    versions.dedup_by_key(|v| v.version);
    Ok(Rollout {
        runtime: runtime.to_string(),
        arn: rt.agent_runtime_arn().to_string(),
        latest: rt.agent_runtime_version().parse().unwrap_or(0),
        versions,
        endpoints,
    })
}

/// The table `rollout status` prints.
pub fn render(r: &Rollout) -> String {
    let mut out = format!(
        "RUNTIME {} (latest version {})\n{}\n\n",
        r.runtime, r.latest, r.arn
    );
    let rows: Vec<[String; 5]> = r
        .versions
        .iter()
        .map(|v| {
            [
                v.version.to_string(),
                v.status.clone(),
                v.created.clone(),
                short_image(&v.image),
                v.endpoints.join(", "),
            ]
        })
        .collect();
    let head = ["VERSION", "STATUS", "CREATED", "IMAGE", "ENDPOINTS"];
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i == 4 {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(head));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

/// `rollout status RUNTIME`.
pub async fn status(common: &Common, runtime: &str) -> i32 {
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let object = match find(&set, "AgentRuntime", runtime) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let (aws, _) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    match read(&aws, &runtime_name(&object)).await {
        Ok(r) => {
            match common.output {
                OutputFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())
                }
                OutputFormat::Text => print!("{}", render(&r)),
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::ERROR
        }
    }
}

/// The RuntimeEndpoint object named `name`: its metadata.name, or else its endpoint name
/// when exactly one object has it (runtimes may each have a `prod`).
fn endpoint_object<'a>(set: &'a ManifestSet, name: &str) -> Result<&'a Object, i32> {
    let endpoints = || {
        set.objects
            .iter()
            .filter(|o| &*o.key.kind == "RuntimeEndpoint")
    };
    if let Some(o) = endpoints().find(|o| &*o.key.name == name) {
        return Ok(o);
    }
    let named: Vec<&Object> = endpoints()
        .filter(|o| o.spec.get("name").and_then(|v| v.as_str()) == Some(name))
        .map(|o| &**o)
        .collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => find(set, "RuntimeEndpoint", name),
        many => {
            let objects: Vec<String> = many.iter().map(|o| o.key.name.to_string()).collect();
            eprintln!(
                "error: endpoint name {name} is used by {} RuntimeEndpoint objects ({}): name the object",
                many.len(),
                objects.join(", ")
            );
            Err(exit::ERROR)
        }
    }
}

/// Where `promote` and `undo` move an endpoint.
enum Target {
    To(u32),
    /// The newest version older than the one the endpoint serves now.
    Previous,
}

/// `rollout promote ENDPOINT --to-version N` and `rollout undo ENDPOINT`.
pub async fn move_endpoint(common: &Common, endpoint: &str, to: Option<u32>, write: bool) -> i32 {
    let target = to.map_or(Target::Previous, Target::To);
    let set = match load(&common.files) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let object = match endpoint_object(&set, endpoint) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let endpoint_name = object
        .spec
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or(&object.key.name)
        .to_string();
    let runtime_ref = object
        .spec
        .get("runtimeRef")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let runtime_object = match find(&set, "AgentRuntime", &runtime_ref) {
        Ok(o) => o.clone(),
        Err(c) => return c,
    };
    let (aws, _) = match connect(&common.instance).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    let rollout = match read(&aws, &runtime_name(&runtime_object)).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let known: Vec<u32> = rollout.versions.iter().map(|v| v.version).collect();
    let list = known
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let version = match target {
        Target::To(n) if known.contains(&n) => n,
        Target::To(n) => {
            eprintln!(
                "error: runtime {} has no version {n} (it has {list})",
                rollout.runtime
            );
            return exit::ERROR;
        }
        Target::Previous => {
            let Some(current) = rollout
                .endpoints
                .iter()
                .find(|e| e.name == endpoint_name)
                .and_then(|e| e.live_version.as_deref())
                .and_then(|v| v.parse::<u32>().ok())
            else {
                eprintln!(
                    "error: endpoint {endpoint_name} of runtime {} is not deployed: nothing to undo (apply the manifests first)",
                    rollout.runtime
                );
                return exit::ERROR;
            };
            match known.iter().copied().filter(|v| *v < current).max() {
                Some(v) => v,
                None => {
                    eprintln!(
                        "error: endpoint {endpoint_name} serves version {current}, and runtime {} has no earlier version (it has {list})",
                        rollout.runtime
                    );
                    return exit::ERROR;
                }
            }
        }
    };
    // A version keepVersions deletes would be gone before the endpoint moves to it.
    if let Some(keep) = runtime_object
        .spec
        .get("keepVersions")
        .and_then(|v| v.as_u64())
        .and_then(|k| u32::try_from(k).ok())
    {
        let in_use = versions::in_use(
            rollout
                .endpoints
                .iter()
                .flat_map(|e| [e.live_version.as_deref(), e.target_version.as_deref()]),
        );
        let doomed = versions::prunable(&known, rollout.latest, &in_use, keep);
        if doomed.contains(&version) {
            eprintln!(
                "error: version {version} is older than the {keep} newest (keepVersions: {keep} on AgentRuntime/{}) and no endpoint serves it: the controller deletes it before the endpoint could move; raise keepVersions first",
                runtime_object.key.name
            );
            return exit::ERROR;
        }
    }
    if endpoint_name == DEFAULT_ENDPOINT {
        eprintln!("error: DEFAULT always serves the latest version; it cannot be moved");
        return exit::ERROR;
    }
    write_edit(
        &object.source.file,
        &object.key.name,
        &endpoint_name,
        version,
        write,
    )
}

fn write_edit(file: &Path, object: &str, endpoint: &str, version: u32, write: bool) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return exit::ERROR;
        }
    };
    let edit = match edit::set_endpoint_version(&text, object, &version.to_string()) {
        Ok(Some(edit)) => edit,
        Ok(None) => {
            println!(
                "{}: RuntimeEndpoint {object} already says version: {version}; nothing to change",
                file.display()
            );
            return exit::OK;
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return exit::ERROR;
        }
    };
    let diff = format!(
        "{}:{}\n{}+{}\n",
        file.display(),
        edit.line,
        edit.before
            .as_ref()
            .map(|b| format!("-{b}\n"))
            .unwrap_or_default(),
        edit.after
    );
    if !write {
        print!("{diff}");
        println!(
            "Make this edit (or run again with --write), then apply it or commit it: endpoint {endpoint} moves to version {version}."
        );
        return exit::OK;
    }
    if let Err(e) = replace_file(file, &edit.text) {
        eprintln!("error: cannot write {}: {e}", file.display());
        return exit::ERROR;
    }
    print!("{diff}");
    println!(
        "Wrote {}. Apply it or commit it: endpoint {endpoint} moves to version {version}.",
        file.display()
    );
    exit::OK
}

/// Replace a file's content in one rename, keeping its permissions.
fn replace_file(file: &Path, text: &str) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.rollout-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(file) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_images() {
        for (uri, want) in [
            (
                "1.dkr.ecr.us-east-1.amazonaws.com/mcp@sha256:0123456789abcdef0123",
                "sha256:0123456789ab",
            ),
            ("1.dkr.ecr.us-east-1.amazonaws.com/mcp:latest", "mcp:latest"),
            ("r/mcp@sha256:ééééééééééééé", "sha256:éééééééééééé"),
            ("", ""),
        ] {
            assert_eq!(short_image(uri), want, "{uri}");
        }
    }

    #[test]
    fn the_table_lists_versions_newest_first_with_their_endpoints() {
        let r = Rollout {
            runtime: "rt".into(),
            arn: "arn:rt".into(),
            latest: 3,
            versions: vec![
                VersionRow {
                    version: 3,
                    status: "READY".into(),
                    created: "2026-12-04T13:00:00Z".into(),
                    image: "r/mcp@sha256:aaaaaaaaaaaaaaaa".into(),
                    endpoints: vec!["DEFAULT".into(), "staging".into()],
                },
                VersionRow {
                    version: 2,
                    status: "READY".into(),
                    created: "2026-12-04T12:00:00Z".into(),
                    image: "r/mcp@sha256:bbbbbbbbbbbbbbbb".into(),
                    endpoints: vec!["prod".into()],
                },
            ],
            endpoints: vec![],
        };
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "RUNTIME rt (latest version 3)");
        assert_eq!(
            lines[3],
            "VERSION  STATUS  CREATED               IMAGE                ENDPOINTS"
        );
        assert_eq!(
            lines[4],
            "3        READY   2026-12-04T13:00:00Z  sha256:aaaaaaaaaaaa  DEFAULT, staging"
        );
        assert_eq!(
            lines[5],
            "2        READY   2026-12-04T12:00:00Z  sha256:bbbbbbbbbbbb  prod"
        );
    }
}
