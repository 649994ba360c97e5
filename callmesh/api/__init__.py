"""Resource models for ``callmesh.io/v1alpha1``: the one source of truth for CRDs and validation."""
