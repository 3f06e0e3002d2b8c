"""The gRPC transport: what every service on the grpc.aio server goes through.

- `gate`: the shutdown gate, the first interceptor;
- `decoding`: undecodable requests become INVALID_ARGUMENT;
- `wrapping`: the base of every interceptor (each method's handler wrapped once, then reused);
- `status`: the one mapping from the core's errors to gRPC status, as handler decorators;
- `flagd_protos`: flagd's messages, and servicer registration from their service descriptors.

The protocol adapters (`vexil.api`) and the security and metrics interceptors build on these;
nothing here knows any one protocol's messages except flagd's registration.
"""
