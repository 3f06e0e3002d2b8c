"""The evaluation engine: flag definitions in, resolutions out.  Pure: no I/O, no asyncio.

Two steps.  `compile_flag` validates a definition and compiles its targeting (JSONLogic with
flagd's `fractional`, `sem_ver`, `starts_with`, `ends_with` and `$ref`) into Python closures,
once per change.  `evaluate` resolves a compiled flag for a context, as often as callers ask,
without walking JSON and without raising: failures are ERROR resolutions.

The answers are flagd's, checked against the reference implementations on generated flags and
contexts (`fractional` against the JavaScript `@openfeature/flagd-core`, which hashes as flagd
does; everything else, and `fractional` in the per-environment CBOR mode, against the Python
`openfeature-flagd-core`); the few deliberate differences are documented in the tests.
"""

from vexil.engine.compiler import CompiledFlag, compile_flag
from vexil.engine.errors import FlagValidationError
from vexil.engine.evaluation import evaluate
from vexil.engine.resolution import ErrorCode, Reason, Resolution, ValueType, not_found

__all__ = [
    "CompiledFlag",
    "ErrorCode",
    "FlagValidationError",
    "Reason",
    "Resolution",
    "ValueType",
    "compile_flag",
    "evaluate",
    "not_found",
]
