"""OpenFeature provider backed by the vexil client (work in progress)."""
