"""The `vexil` command-line interface."""
