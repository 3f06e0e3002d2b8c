"""Metrics for operators: a per-process Prometheus registry, the gRPC interceptor and HTTP hooks.

Import what you need from its modules; this package re-exports nothing, so the CLI can read
`thresholds` without loading the server side (gRPC, aiohttp, prometheus-client):

- `metrics`: `Metrics`, every metric one process exports and its labels (one per `App`);
- `interceptor`: `MetricsInterceptor` for gRPC, and `protocol_of`, the `protocol` label of a
  method (the security interceptors count per protocol too);
- `web`: `/metrics` and `instrument_http` for the HTTP side;
- `stats`, `state`, `evaluations`, `dynamodb`: what feeds the metrics;
- `thresholds`: the health targets the alert rules and `vexil status` apply.
"""
