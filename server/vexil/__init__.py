"""vexil: a feature-flag service."""

__version__ = "0.1.0"
