//! Pushing an image from an OCI layout to ECR through its API, with the controller's own
//! credentials (no registry login, no Docker): BatchCheckLayerAvailability for the config
//! and layers, InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload for the blobs
//! ECR lacks, then PutImage with the manifest's exact bytes and media type.
//!
//! Blobs stream from disk one part at a time (at most one part in memory), and each is
//! checked against its digest on the way. An interrupted push resumes by itself: the
//! next one skips the blobs that made it.

use std::io::Read;
use std::sync::Arc;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::ImageIdentifier;
use aws_smithy_types::Blob;
use sha2::{Digest, Sha256};

use super::layout::{
    DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Layout, OCI_INDEX, OCI_MANIFEST, SelectedImage,
};
use crate::error::{Reason, ReconcileError, Result, aws_err};

const MIB: u64 = 1024 * 1024;
/// ECR's layer part limits (service quotas): 5 MiB at least (but the last part),
/// 10 MiB at most, and 4,200 parts.
pub const MIN_PART: u64 = 5 * MIB;
pub const MAX_PART: u64 = 10 * MIB;
pub const MAX_PARTS: u64 = 4200;
/// BatchCheckLayerAvailability takes at most 100 digests.
const CHECK_BATCH: usize = 100;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    /// The image digest ECR reports (the emulator computes it its own way).
    pub digest: String,
    pub blobs_total: usize,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
}

/// The part size to use for what InitiateLayerUpload advised, within ECR's limits.
pub fn part_size(advised: Option<i64>) -> u64 {
    advised
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(MAX_PART)
        .clamp(MIN_PART, MAX_PART)
}

/// Push `image` from `layout` to repository `repo`, tagged `tag`.
pub async fn push_image(
    ecr: &Client,
    repo: &str,
    layout: Arc<Layout>,
    image: &SelectedImage,
    tag: &str,
) -> Result<PushReport> {
    let blobs = image.blobs();
    let digests: Vec<String> = blobs.iter().map(|d| d.digest.clone()).collect();
    let missing = missing_blobs(ecr, repo, &digests).await?;
    let mut report = PushReport {
        digest: String::new(),
        blobs_total: blobs.len(),
        blobs_uploaded: 0,
        bytes_uploaded: 0,
    };
    for d in blobs.into_iter().filter(|d| missing.contains(&d.digest)) {
        report.bytes_uploaded += upload_blob(ecr, repo, layout.clone(), d).await?;
        report.blobs_uploaded += 1;
    }
    report.digest = put_manifest(ecr, repo, &image.manifest, &image.media_type, tag).await?;
    Ok(report)
}

/// The digests ECR does not have in `repo`.
pub async fn missing_blobs(ecr: &Client, repo: &str, digests: &[String]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for chunk in digests.chunks(CHECK_BATCH) {
        let out = ecr
            .batch_check_layer_availability()
            .repository_name(repo)
            .set_layer_digests(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(aws_err(format!("BatchCheckLayerAvailability {repo}")))?;
        let available: Vec<&str> = out
            .layers()
            .iter()
            .filter(|l| {
                l.layer_availability()
                    .is_some_and(|a| a.as_str() == "AVAILABLE")
            })
            .filter_map(|l| l.layer_digest())
            .collect();
        missing.extend(
            chunk
                .iter()
                .filter(|d| !available.contains(&d.as_str()))
                .cloned(),
        );
    }
    Ok(missing)
}

/// Read up to `n` bytes (fewer only at the end of the stream).
fn read_part(reader: &mut (dyn Read + Send), n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Upload one blob in parts; returns the bytes sent.
async fn upload_blob(ecr: &Client, repo: &str, layout: Arc<Layout>, d: &Descriptor) -> Result<u64> {
    let digest = d.digest.clone();
    let started = ecr
        .initiate_layer_upload()
        .repository_name(repo)
        .send()
        .await
        .map_err(aws_err(format!("InitiateLayerUpload {repo}")))?;
    let upload_id = started.upload_id().unwrap_or_default().to_string();
    let part = part_size(started.part_size());
    if d.size > part * MAX_PARTS {
        return Err(ReconcileError::terminal(
            Reason::LayerTooLarge,
            format!(
                "blob {digest} is {} bytes; ECR takes at most {MAX_PARTS} parts of {part} bytes",
                d.size
            ),
        ));
    }
    let layout_path = layout.path().to_path_buf();
    let unreadable = move |e: String| {
        ReconcileError::recoverable(
            Reason::ImageLayoutUnreadable,
            format!("{}: blob {}: {e}", layout_path.display(), d.digest),
        )
    };
    let opened = {
        let (layout, digest) = (layout.clone(), digest.clone());
        tokio::task::spawn_blocking(move || layout.open_blob(&digest))
            .await
            .map_err(|e| unreadable(e.to_string()))??
    };
    let (mut reader, size) = opened;
    // A blob of the wrong size is refused before any of it is sent.
    if size != d.size {
        return Err(ReconcileError::terminal(
            Reason::InvalidImageLayout,
            format!(
                "{}: blob {digest} is {size} bytes, its descriptor says {}",
                layout.path().display(),
                d.size
            ),
        ));
    }
    let mut hasher = Sha256::new();
    let mut sent: u64 = 0;
    loop {
        // Read and hash off the async threads; only this part is in memory.
        let (r, h, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = read_part(reader.as_mut(), part as usize);
            let mut hasher = hasher;
            if let Ok(b) = &bytes {
                hasher.update(b);
            }
            (reader, hasher, bytes)
        })
        .await
        .map_err(|e| unreadable(e.to_string()))?;
        (reader, hasher) = (r, h);
        let bytes = bytes.map_err(|e| unreadable(e.to_string()))?;
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len() as u64;
        ecr.upload_layer_part()
            .repository_name(repo)
            .upload_id(&upload_id)
            .part_first_byte(sent as i64)
            .part_last_byte((sent + len - 1) as i64)
            .layer_part_blob(Blob::new(bytes))
            .send()
            .await
            // A resent part that had arrived, or an expired upload, is recoverable: the
            // next attempt checks which blobs arrived and starts the rest over.
            .map_err(aws_err(format!("UploadLayerPart {repo} {digest}")))?;
        sent += len;
        if len < part {
            break;
        }
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != digest || sent != d.size {
        return Err(ReconcileError::terminal(
            Reason::InvalidImageLayout,
            format!(
                "{}: blob {digest} does not match its descriptor ({sent} bytes, {actual})",
                layout.path().display()
            ),
        ));
    }
    match ecr
        .complete_layer_upload()
        .repository_name(repo)
        .upload_id(&upload_id)
        .layer_digests(&digest)
        .send()
        .await
    {
        Ok(out) => {
            if let Some(got) = out.layer_digest()
                && got != digest
            {
                return Err(ReconcileError::recoverable(
                    Reason::LayerDigestMismatch,
                    format!("CompleteLayerUpload {repo}: ECR computed {got} for blob {digest}"),
                ));
            }
        }
        // Someone (or our own resent request) completed the same blob meanwhile: it is
        // there, which is what counts.
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_layer_already_exists_exception()) => {}
        // UploadNotFoundException (a resent request whose first attempt completed the
        // upload) is recoverable: the next attempt finds the blob there and skips it.
        Err(e) => return Err(aws_err(format!("CompleteLayerUpload {repo} {digest}"))(e)),
    }
    Ok(sent)
}

/// PutImage with the manifest bytes as they are; an image that already has this manifest
/// and tag is success. Returns the digest ECR reports.
pub async fn put_manifest(
    ecr: &Client,
    repo: &str,
    manifest: &[u8],
    media_type: &str,
    tag: &str,
) -> Result<String> {
    let text = std::str::from_utf8(manifest).map_err(|_| {
        ReconcileError::terminal(
            Reason::InvalidImageLayout,
            "the image manifest is not UTF-8 JSON",
        )
    })?;
    let put = ecr
        .put_image()
        .repository_name(repo)
        .image_manifest(text)
        .image_manifest_media_type(media_type)
        // The digest of these exact bytes: ECR checks it, and stores it as the digest.
        .image_digest(super::layout::sha256_digest(manifest))
        .image_tag(tag)
        .send()
        .await;
    match put {
        Ok(out) => {
            if let Some(d) = out
                .image()
                .and_then(|i| i.image_id())
                .and_then(|id| id.image_digest())
            {
                return Ok(d.to_string());
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_image_already_exists_exception()) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_image_tag_already_exists_exception()) =>
        {
            return Err(ReconcileError::terminal(
                Reason::aws("ImageTagAlreadyExistsException"),
                format!(
                    "PutImage {repo}:{tag}: the tag is immutable in this repository and points \
                     at another image; {}",
                    if super::is_content_tag(tag) {
                        "a content tag names one content, so another pusher used it for \
                         different bytes: delete that image, or use another repository"
                    } else {
                        "set the Repository's imageTagMutability: MUTABLE, or drop movingTag"
                    }
                ),
            ));
        }
        Err(e) => return Err(aws_err(format!("PutImage {repo}:{tag}"))(e)),
    }
    tag_digest(ecr, repo, tag).await?.ok_or_else(|| {
        ReconcileError::recoverable(
            Reason::ImageNotFound,
            format!("PutImage {repo}:{tag} succeeded but the tag is not there"),
        )
    })
}

/// The digest `tag` points at in `repo`, or `None`.
pub async fn tag_digest(ecr: &Client, repo: &str, tag: &str) -> Result<Option<String>> {
    match ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
    {
        Ok(out) => Ok(out
            .image_details()
            .iter()
            .find(|i| i.image_tags().iter().any(|t| t == tag))
            .and_then(|i| i.image_digest())
            .map(String::from)),
        Err(e)
            if e.as_service_error().is_some_and(|se| {
                se.is_image_not_found_exception() || se.is_repository_not_found_exception()
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_err(format!("DescribeImages {repo}:{tag}"))(e)),
    }
}

/// Point `tag` at the image `digest` already in `repo` (its manifest read back with
/// BatchGetImage). Fails when the tag did not move (an immutable tag).
pub async fn retag(ecr: &Client, repo: &str, digest: &str, tag: &str) -> Result<()> {
    let out = ecr
        .batch_get_image()
        .repository_name(repo)
        .image_ids(ImageIdentifier::builder().image_digest(digest).build())
        .set_accepted_media_types(Some(
            [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST]
                .map(String::from)
                .to_vec(),
        ))
        .send()
        .await
        .map_err(aws_err(format!("BatchGetImage {repo}@{digest}")))?;
    let image = out
        .images()
        .iter()
        .find(|i| i.image_id().and_then(|id| id.image_digest()) == Some(digest))
        .ok_or_else(|| {
            ReconcileError::recoverable(
                Reason::ImageNotFound,
                format!("BatchGetImage {repo}@{digest}: image not found"),
            )
        })?;
    let manifest = image.image_manifest().unwrap_or_default();
    let media_type = image
        .image_manifest_media_type()
        .map(String::from)
        .or_else(|| {
            serde_json::from_str::<serde_json::Value>(manifest)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(String::from))
        })
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    move_tag(ecr, repo, manifest.as_bytes(), &media_type, tag, digest).await
}

/// Point `tag` at the image with `manifest`, whose digest ECR reports as `digest`; an
/// error when the tag stays elsewhere (an immutable tag already in use).
pub async fn move_tag(
    ecr: &Client,
    repo: &str,
    manifest: &[u8],
    media_type: &str,
    tag: &str,
    digest: &str,
) -> Result<()> {
    let now = put_manifest(ecr, repo, manifest, media_type, tag).await?;
    if now != digest {
        return Err(ReconcileError::terminal(
            Reason::TagNotMoved,
            format!(
                "{repo}:{tag} still points at {now}, not {digest}; is the tag immutable in this repository?"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_stay_within_ecr_limits() {
        let cases = [
            (None, MAX_PART),
            (Some(10 * MIB as i64), 10 * MIB),
            (Some(6 * MIB as i64), 6 * MIB),
            (Some(1), MIN_PART),
            (Some(-5), MAX_PART),
            (Some(100 * MIB as i64), MAX_PART),
        ];
        for (advised, want) in cases {
            assert_eq!(part_size(advised), want, "{advised:?}");
        }
    }

    #[test]
    fn parts_are_read_one_at_a_time() {
        let data: Vec<u8> = (0..25u32).map(|i| i as u8).collect();
        let mut r: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(data));
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let p = read_part(r.as_mut(), 10).expect("read");
            (!p.is_empty()).then_some(p.len())
        })
        .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }
}
