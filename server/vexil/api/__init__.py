"""Protocol adapters: each maps one wire protocol onto the service core.

One module per service: `evaluation`, `admin` and `keys` (vexil.v1), `flagd_evaluation` (flagd
evaluation v1 and v2) and `flagd_sync` (flagd sync v1). They are leaves of the import graph: only
the composition root (`vexil.app`) imports them, so what they share lives elsewhere (`vexil.wire`,
`vexil.identity`, `vexil.transport`, `vexil.flagd_compat`).
"""
