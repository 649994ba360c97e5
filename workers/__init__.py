"""Data plane: gRPC, ESL and HTTP servers that wrap the core."""
