"""The live side: the mesh config read from a cluster, a call matched against a proxy's running
config (its config_dump), and the egress gateway's config read through the API's port-forward."""
