"""The gRPC edge: servicers, error mapping, the server and its lifecycle."""
