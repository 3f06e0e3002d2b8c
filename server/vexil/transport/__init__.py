"""The gRPC transport: what every service on the grpc.aio server goes through.

- `generic`: `Router`, the one generic handler every service joins through: it finds a call's
  handler, with the interceptors applied once per method, and checks the shutdown gate;
- `gate`: the shutdown gate, refusing new calls once the server stops;
- `arrival`: a call's request message arrives soon after its headers, or the call ends;
- `gone`: grpc's ERROR for a send to a client that went away, logged at DEBUG instead;
- `decoding`: undecodable requests become INVALID_ARGUMENT;
- `wrapping`: the base of every interceptor (how to wrap one method's handler);
- `status`: the one mapping from the core's errors to gRPC status, as handler decorators;
- `flagd_protos`: flagd's messages, and servicer registration from their service descriptors.

The protocol adapters (`vexil.api`) and the security and metrics interceptors build on these;
nothing here knows any one protocol's messages except flagd's registration.
"""
