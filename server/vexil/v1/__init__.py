"""Generated protobuf and gRPC code for vexil.v1 (regenerate with `make proto`)."""
