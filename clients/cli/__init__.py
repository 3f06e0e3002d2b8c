"""The `vexil` command-line interface.

gRPC's core prints some events at INFO on standard error, as lines outside any log format: one
per failed TLS handshake, in a client and in a server alike (so any stranger's plaintext probe of
a TLS server would print one).  The command keeps gRPC to errors (`GRPC_VERBOSITY=ERROR`, what
gRPC documents as its default) unless the variable is set: a client reports a failed handshake
once, with what to change (`vexil.ops.connection`).  gRPC reads the variable once, when it is
first imported, so it is set here, before any module of the command imports it.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
