"""Python client SDK for vexil (work in progress: see the client issue)."""
