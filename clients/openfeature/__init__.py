"""OpenFeature provider for vexil: `VexilProvider` (needs the `openfeature` extra)."""

from vexil.openfeature.provider import VexilProvider, context_of, resolution

__all__ = ["VexilProvider", "context_of", "resolution"]
