"""flagd's conventions, shared by every door that speaks to flagd clients.

The flagd gRPC adapters (`vexil.api.flagd_evaluation`, `vexil.api.flagd_sync`) and OFREP
(`vexil.http.ofrep`) answer OpenFeature providers that know nothing of vexil, so they agree on:

- `selector`: which environment a caller means (the `flagd-selector` header and its forms);
- `metadata`: flag-set metadata under a flag's own, and only the scalar values flagd allows;
- `document`: an environment as one flagd flag-configuration document (what in-process
  providers evaluate).
"""
