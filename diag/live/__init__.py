"""The live side: what a running sidecar's config says."""
