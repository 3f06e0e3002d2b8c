"""Generated flagd protocol code (see `vexil.flagd`)."""
