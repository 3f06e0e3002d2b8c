"""Generated code for flagd's protocols (`make proto` from `proto/openfeature/schemas/protobuf/flagd/`).

Never edit the `*_pb2*` modules by hand. Why the unusual layout: protobuf keeps one process-wide
registry of message types keyed by *file name*, and the OpenFeature Python flagd provider
registers the same `flagd.*` messages from files named `openfeature/schemas/protobuf/flagd/...`.
vexil's protos carry exactly those names and produce byte-identical descriptors (a test compares
them), so a process may load both, in either order, and they share one set of message classes.
`make proto` writes to `server/openfeature/schemas/protobuf/flagd/`, a symlink to this package, so
the code is imported under vexil's own namespace as `vexil.flagd.*`.

The generated `*_pb2_grpc` modules import their messages by the provider's module path, so vexil
does not use them: `vexil.transport.flagd_protos` registers servicers straight from the service
descriptors instead.
"""
