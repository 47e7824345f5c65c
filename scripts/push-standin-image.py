"""Push a small stand-in image manifest to an ECR repository, as CI would push the real
image. Used by the demo against the emulator (no Docker needed).

Usage: python scripts/push-standin-image.py REPOSITORY TAG
Reads AWS_ENDPOINT_URL / AWS_REGION / credentials from the environment.
"""

import hashlib
import json
import sys
import time

import boto3

repo, tag = sys.argv[1], sys.argv[2]
config = json.dumps({"architecture": "arm64", "os": "linux", "built": time.time()}).encode()
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": len(config),
        "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
    },
    "layers": [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "size": len(config),
            "digest": "sha256:" + hashlib.sha256(b"layer" + config).hexdigest(),
        }
    ],
}
ecr = boto3.client("ecr")
out = ecr.put_image(repositoryName=repo, imageTag=tag, imageManifest=json.dumps(manifest))
print(f"pushed {repo}:{tag} -> {out['image']['imageId']['imageDigest']}")
