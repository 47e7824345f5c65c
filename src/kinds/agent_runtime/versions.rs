//! `keepVersions`: deleting a runtime's old versions that no endpoint serves.
//!
//! AgentCore keeps every version a runtime ever had. DeleteAgentRuntime with a version
//! deletes only that version. The latest version, and every version an endpoint serves or
//! is moving to (as AgentCore reports its endpoints, DEFAULT included), are never deleted.

use std::collections::BTreeSet;

use aws_sdk_bedrockagentcorecontrol::Client;
use aws_sdk_bedrockagentcorecontrol::types::{AgentRuntime, AgentRuntimeEndpoint};

use crate::error::{Result, aws_err, write_result};

/// The versions to delete, oldest first: all but the `keep` newest, the latest and those
/// `in_use`.
pub fn prunable(versions: &[u32], latest: u32, in_use: &BTreeSet<u32>, keep: u32) -> Vec<u32> {
    let mut newest_first: Vec<u32> = versions.to_vec();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    newest_first.dedup();
    let mut out: Vec<u32> = newest_first
        .into_iter()
        .skip(keep as usize)
        .filter(|v| *v != latest && !in_use.contains(v))
        .collect();
    out.reverse();
    out
}

/// The runtime's endpoints, DEFAULT included, across all pages.
pub async fn list_endpoints(client: &Client, id: &str) -> Result<Vec<AgentRuntimeEndpoint>> {
    let mut out = Vec::new();
    let mut pages = client
        .list_agent_runtime_endpoints()
        .agent_runtime_id(id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_err(format!("ListAgentRuntimeEndpoints {id}")))?;
        out.extend(page.runtime_endpoints().iter().cloned());
    }
    Ok(out)
}

/// The runtime's versions (summaries), across all pages.
pub async fn list_versions(client: &Client, id: &str) -> Result<Vec<AgentRuntime>> {
    let mut out = Vec::new();
    let mut pages = client
        .list_agent_runtime_versions()
        .agent_runtime_id(id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_err(format!("ListAgentRuntimeVersions {id}")))?;
        out.extend(page.agent_runtimes().iter().cloned());
    }
    Ok(out)
}

/// The version numbers endpoints serve or move to, from their live and target versions.
pub fn in_use<'a>(versions: impl IntoIterator<Item = Option<&'a str>>) -> BTreeSet<u32> {
    versions
        .into_iter()
        .flatten()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// Read the runtime's versions and its endpoints' versions, and return what
/// [`prunable`] gives.
pub async fn read_prunable(client: &Client, id: &str, latest: u32, keep: u32) -> Result<Vec<u32>> {
    let endpoints = list_endpoints(client, id).await?;
    let in_use = in_use(
        endpoints
            .iter()
            .flat_map(|e| [e.live_version(), e.target_version()]),
    );
    // A version being deleted is on its way out: asking again would only conflict.
    let versions: Vec<u32> = list_versions(client, id)
        .await?
        .iter()
        .filter(|r| r.status().as_str() != "DELETING")
        .filter_map(|r| r.agent_runtime_version().parse().ok())
        .collect();
    Ok(prunable(&versions, latest, &in_use, keep))
}

/// Delete the given versions (one already gone counts as deleted).
pub async fn delete(client: &Client, id: &str, versions: &[String]) -> Result<()> {
    for v in versions {
        let deleted = client
            .delete_agent_runtime()
            .agent_runtime_id(id)
            .agent_runtime_version(v)
            .send()
            .await;
        write_result(format!("DeleteAgentRuntime {id} version {v}"), deleted)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunable_table() {
        let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        // (what, versions listed, latest, in use by endpoints, keep, deleted)
        type Case<'a> = (&'a str, &'a [u32], u32, &'a [u32], u32, &'a [u32]);
        let cases: &[Case] = &[
            ("nothing to do", &[1, 2], 2, &[2], 2, &[]),
            ("keep two of five", &[1, 2, 3, 4, 5], 5, &[5], 2, &[1, 2, 3]),
            (
                "an endpoint keeps one",
                &[1, 2, 3, 4, 5],
                5,
                &[5, 2],
                2,
                &[1, 3],
            ),
            (
                "the latest is kept even at keep 0",
                &[1, 2, 3],
                3,
                &[],
                0,
                &[1, 2],
            ),
            (
                "listed out of order, twice",
                &[3, 1, 5, 2, 4, 4],
                5,
                &[],
                3,
                &[1, 2],
            ),
            (
                "a latest the listing has not caught up with",
                &[1, 2, 3],
                4,
                &[],
                1,
                &[1, 2],
            ),
            ("keep more than there are", &[1, 2], 2, &[], 10, &[]),
        ];
        for (what, versions, latest, in_use, keep, want) in cases {
            assert_eq!(
                prunable(versions, *latest, &set(in_use), *keep),
                want.to_vec(),
                "{what}"
            );
        }
    }
}
