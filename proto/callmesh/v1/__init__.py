"""Generated protobuf and gRPC modules for package callmesh.v1."""
