"""Generated eucgate.v1 protobuf and gRPC modules."""
