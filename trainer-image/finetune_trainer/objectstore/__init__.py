"""S3-compatible object storage for the trainer image: session sources, base models and the trained model.

Client library: the MinIO Python SDK (`minio`), not boto3 or an fsspec/s3fs stack. What decided it:
- boto3 and s3fs both sit on botocore, which requires python-dateutil < 3, while the project's pinned
  Kubernetes client (37.0.2) requires python-dateutil >= 3: pip cannot install either beside it.
- The MinIO SDK speaks plain S3 to any S3-compatible service, covers the default credential chain a pod
  needs (AWS_* variables, IRSA / workload identity's web identity token, ECS and EC2 roles), streams
  objects, does multipart uploads, and its urllib3 layer retries 5xx and connection errors with backoff.
- It is synchronous like both entrypoints, and cheap to import (docs/object-storage.md has the figures);
  the curation step imports it only when its source is in a bucket.

Modules: `location` (s3:// URIs and key globs, pure), `client` (a configured client and credentials from
the environment), `errors` (S3 errors -> job failure reasons naming the URI), `download` (streaming,
verified, resumable), `upload` (a folder with its content digest), `jobio` (what the entrypoints call).
"""
