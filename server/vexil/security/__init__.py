"""vexil's security layer: who may call what, how often, over what channel.

Import what you need from its modules; this package re-exports nothing, so importing one part
(the CLI needs only `tls` and `apikeys`) never loads the others (JWT, gRPC interceptors):

- `authn`: `Authorization: Bearer` credentials -> `Identity` (API keys via `keys`, JWTs via
  `jwt_verifier`);
- `policy` and `roles`: the one table of every RPC and the role it needs;
- `ratelimit`: token buckets per client (admin API) and per server (evaluation);
- `streams`: ending open streams whose credentials were revoked or expired;
- `interceptors` (gRPC) and `http` (OFREP): where those checks run;
- `tls`: server and client TLS material; `audit`: security event records; `apikeys`: key tokens;
- `layer`: all of it built from `Settings`, for `vexil.app`.
"""
