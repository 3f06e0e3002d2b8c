"""flagd's `fractional`: deterministic percentage rollouts.

    {"fractional": [<bucket-by expression>?, [variant, weight?], [variant, weight?], ...]}

Two hashings of the bucketing value exist among flagd implementations, chosen per environment
with the flag-set metadata key `fractionalHashing`:

- `"string"` (the default): flagd's own ("fractional v2", as flagd and the JavaScript
  `@openfeature/flagd-core` 4.x bucket).  A first argument that evaluates to a string is the
  bucketing value; anything else means the shorthand form, bucketing by the flag key and the
  targeting key concatenated.  The UTF-8 bytes are hashed with MurmurHash3 x86-32 (seed 0,
  unsigned) and mapped onto the summed weights with `bucket = (hash * total_weight) >> 32`.
- `"cbor"`: the Python `openfeature-flagd-core` 2.0.0 (an accepted flagd proposal not yet in
  flagd itself): any JSON value is the bucketing value (`[flagKey, targetingKey]` in the
  shorthand, used when the first argument is itself a bucket), encoded as deterministic CBOR
  (integral floats as integers) before hashing.  For fleets whose in-process providers already
  bucket this way.

In both, the bucket whose cumulative weight first exceeds the point wins.  Weights are integers
(default 1, negative ones count as 0; the string hashing also takes an integral float, as a JSON
number it is).  Anything malformed at evaluation time (no targeting key for the shorthand, a
non-integer weight, a total of 0 or above 2^31-1) yields null, that is the flag's default,
never an error.

For speed the common cases skip the general paths: the shorthand hashes one concatenated string
(string) or an inline CBOR encoding with the flag-key prefix built once at compile time (cbor),
and constant bucket tables are precomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cbor2
import mmh3

from vexil.engine.expr import Expr, Fn, Operator, Site, as_fn, const, dynamic
from vexil.model import shown

MAX_TOTAL_WEIGHT = 2_147_483_647
"""The reference refuses a total weight above MaxInt32."""

HASHING_KEY = "fractionalHashing"
"""The flag-set (environment) metadata key that chooses the hashing."""
STRING = "string"
CBOR = "cbor"
HASHINGS = (STRING, CBOR)


def hashing_of(metadata: Any) -> str | None:
    """The hashing an environment's metadata asks for: STRING when it says nothing, None when
    it names one that does not exist."""
    if not isinstance(metadata, Mapping):
        return STRING
    chosen = metadata.get(HASHING_KEY, STRING)
    return chosen if chosen in HASHINGS else None


_murmur = mmh3.hash


# -- deterministic CBOR ---------------------------------------------------------------------------


def _head(major: int, length: int) -> bytes:
    """A CBOR item head in its shortest (canonical) form."""
    if length < 24:
        return bytes((major << 5 | length,))
    if length < 0x100:
        return bytes((major << 5 | 24, length))
    if length < 0x10000:
        return bytes((major << 5 | 25,)) + length.to_bytes(2, "big")
    if length < 0x100000000:
        return bytes((major << 5 | 26,)) + length.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + length.to_bytes(8, "big")


_SMALL_TEXT_HEADS = [bytes((0x60 | n,)) for n in range(24)]


def encode_text(text: str) -> bytes:
    raw = text.encode()
    size = len(raw)
    if size < 24:
        return _SMALL_TEXT_HEADS[size] + raw
    return _head(3, size) + raw


_TWO_POW_64 = 1 << 64


def _normalize(value: Any) -> Any:
    """Integral floats become integers (within the 64-bit range), tuples become arrays."""
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer() and -(2**63) <= value <= 2**64 - 1:
        return int(value)
    return value


def _encode_simple(value: Any) -> bytes | None:
    """The canonical CBOR of the JSON scalars and arrays the fast path handles, else None."""
    cls = value.__class__
    if cls is str:
        return encode_text(value)
    if cls is bool:
        return b"\xf5" if value else b"\xf4"
    if value is None:
        return b"\xf6"
    if cls is int:
        if 0 <= value < _TWO_POW_64:
            return _head(0, value)
        if -_TWO_POW_64 <= value < 0:
            return _head(1, -1 - value)
        return None
    if cls is float:
        if value.is_integer() and -(2**63) <= value <= 2**64 - 1:
            return _encode_simple(int(value))
        return None
    if cls is list:
        parts = [_head(4, len(value))]
        for item in value:
            encoded = _encode_simple(item)
            if encoded is None:
                return None
            parts.append(encoded)
        return b"".join(parts)
    return None


def encode_bucket_value(value: Any) -> bytes | None:
    """Deterministic CBOR of a bucketing value, or None when it cannot be encoded."""
    try:
        encoded = _encode_simple(value)
        if encoded is not None:
            return encoded
        return bytes(cbor2.dumps(_normalize(value), canonical=True))
    except Exception:  # the reference treats any encoding failure as "no bucket"
        return None


def bucket_hash(encoded: bytes) -> int:
    """MurmurHash3 x86-32, seed 0, as an unsigned 32-bit integer."""
    return int(_murmur(encoded, 0, False))


# -- bucket tables ----------------------------------------------------------------------------


def parse_bucket(bucket: Any) -> tuple[Any, int] | None:
    """`[variant]` or `[variant, weight]` -> (variant, weight >= 0); None when malformed."""
    if not isinstance(bucket, list | tuple) or not bucket or len(bucket) > 2:
        return None
    weight = 1
    if len(bucket) == 2:
        raw = bucket[1]
        if isinstance(raw, bool) or not isinstance(raw, int):
            return None
        weight = max(0, raw)
    return bucket[0], weight


Table = tuple[int, tuple[tuple[int, Any], ...]]
"""(total weight, ((cumulative end, variant), ...)) with zero-weight buckets dropped."""


def _table(buckets: Sequence[Any], parse: Callable[[Any], tuple[Any, int] | None]) -> Table | None:
    """The selection table of buckets each read by `parse` (one hashing's reading), or None when
    a bucket is malformed or the total is 0 or above MaxInt32 (the answer is then null)."""
    total = 0
    ends: list[tuple[int, Any]] = []
    for bucket in buckets:
        parsed = parse(bucket)
        if parsed is None:
            return None
        variant, weight = parsed
        total += weight
        if weight:
            ends.append((total, variant))
    if total > MAX_TOTAL_WEIGHT or total <= 0:
        return None
    return total, tuple(ends)


def build_table(buckets: Sequence[Any]) -> Table | None:
    """The selection table for evaluated buckets, or None when the reference would answer null."""
    return _table(buckets, parse_bucket)


def pick(table: Table, hashed: int) -> Any:
    total, ends = table
    point = (hashed * total) >> 32
    for end, variant in ends:
        if point < end:
            return variant
    return None


def fractional_values(values: Sequence[Any], data: Any, flag_key: str | None) -> Any:
    """The operator on evaluated arguments, in full generality (the reference's algorithm).

    `data` is what the shorthand form reads `targetingKey` from; `flag_key` is the flag's key,
    or None inside an array operator, where the reference reads `$flagd.flagKey` from the item.
    """
    if not values:
        return None
    first = values[0]
    if isinstance(first, list | tuple):
        targeting_key = data.get("targetingKey")
        if not isinstance(targeting_key, str) or not targeting_key:
            return None
        if flag_key is None:
            flag_key = data.get("$flagd", {}).get("flagKey", "")
        bucket_by: Any = [flag_key, targeting_key]
        buckets = values
    else:
        bucket_by = first
        buckets = values[1:]
    if bucket_by is None:
        return None
    encoded = encode_bucket_value(bucket_by)
    if encoded is None:
        return None
    table = build_table(buckets)
    if table is None:
        return None
    return pick(table, bucket_hash(encoded))


# -- flagd's string hashing (v2) -------------------------------------------------------------------


def _string_weight(raw: Any) -> int | None:
    """A weight as flagd reads it: an integer (an integral float is one), negatives as 0."""
    cls = raw.__class__
    if cls is int:
        return raw if raw > 0 else 0
    if cls is float and raw.is_integer():
        return int(raw) if raw > 0 else 0
    if cls is not bool and isinstance(raw, int):
        return max(0, int(raw))
    return None


def _parse_string_bucket(bucket: Any) -> tuple[Any, int] | None:
    """A bucket as flagd reads it: `[variant]` / `[variant, weight]` with a string, number, boolean
    or null variant and an integer weight (negatives as 0); None when malformed."""
    if not isinstance(bucket, list | tuple) or not bucket or len(bucket) > 2:
        return None
    variant = bucket[0]
    if variant is not None and not isinstance(variant, str | int | float):
        return None
    if len(bucket) == 1:
        return variant, 1
    weight = _string_weight(bucket[1])
    return None if weight is None else (variant, weight)


def build_string_table(buckets: Sequence[Any]) -> Table | None:
    """The selection table as flagd builds it, or None when flagd answers null: a malformed
    bucket (see `_parse_string_bucket`) or a total of 0 or above MaxInt32."""
    return _table(buckets, _parse_string_bucket)


def string_hash(text: str) -> int | None:
    """MurmurHash3 x86-32 (seed 0, unsigned) of the UTF-8 bytes; None for a string that has no
    UTF-8 form (a lone surrogate)."""
    try:
        return int(_murmur(text.encode(), 0, False))
    except UnicodeEncodeError:
        return None


def fractional_string_values(values: Sequence[Any], data: Any, flag_key: str | None) -> Any:
    """flagd's operator on evaluated arguments, in full generality.

    A string first argument is the bucketing value; anything else means the shorthand (and is
    then read as the first bucket).  `flag_key` is None inside an array operator, where the
    data is the current item and the flag key is read from its `$flagd.flagKey`, as flagd does.
    """
    if not values:
        return None
    first = values[0]
    if isinstance(first, str):
        bucket_by = first
        buckets = values[1:]
    else:
        targeting_key = data.get("targetingKey") if isinstance(data, Mapping) else None
        if not isinstance(targeting_key, str) or not targeting_key:
            return None
        if flag_key is None:
            flagd = data.get("$flagd")
            found = flagd.get("flagKey") if isinstance(flagd, Mapping) else None
            flag_key = found if isinstance(found, str) else ""
        bucket_by = flag_key + targeting_key
        buckets = values
    table = build_string_table(buckets)
    if table is None:
        return None
    hashed = string_hash(bucket_by)
    return None if hashed is None else pick(table, hashed)


# -- builder --------------------------------------------------------------------------------


def _check_constant_buckets(site: Site, exprs: Sequence[Expr], first_bucket: int) -> None:
    """Strict checks of literal buckets: shape, integer weights, known variants, total."""
    compiler = site.compiler
    total = 0
    all_known = True
    if len(exprs) <= first_bucket:
        site.invalid("fractional needs at least one [variant, weight] bucket")
    for index in range(first_bucket, len(exprs)):
        path = site.arg_paths[index]
        raw = site.args[index]
        if not isinstance(raw, list):
            site.invalid("a fractional bucket is an array: [variant, weight]", path)
            all_known = False
            continue
        if not raw or len(raw) > 2:
            site.invalid(f"a fractional bucket is [variant] or [variant, weight], got {len(raw)} items", path)
            all_known = False
            continue
        if len(raw) == 2:
            weight = raw[1]
            if isinstance(weight, bool) or not isinstance(weight, int):
                if isinstance(weight, dict):
                    all_known = False  # computed weight: checked when evaluated
                else:
                    site.invalid(f"fractional weights must be integers, got {shown(weight)}", f"{path}[1]")
                    all_known = False
                    continue
            else:
                total += max(0, weight)
        else:
            total += 1
        if site.result and not isinstance(raw[0], dict | list):
            compiler.check_variant(raw[0], f"{path}[0]")
    if all_known and len(exprs) > first_bucket:
        if total <= 0:
            site.invalid("the fractional weights add up to 0: no bucket can be chosen")
        elif total > MAX_TOTAL_WEIGHT:
            site.invalid(f"the fractional weights add up to {total}, above the maximum {MAX_TOTAL_WEIGHT}")


General = Callable[[Sequence[Any], Any, str | None], Any]
"""The operator on evaluated arguments in one hashing: `fractional_values` (CBOR) or
`fractional_string_values` (string)."""

Specialize = Callable[[str, bool, list[Any], Fn], Expr]
"""A hashing's fast paths for constant buckets: (flag key, shorthand, bucket values, the first
argument's function) -> the compiled operator."""


def build_fractional(site: Site) -> Expr:
    """The hashing of the flag's environment decides which flagd `fractional` this is."""
    if site.compiler.fractional_hashing == CBOR:
        return _build(site, fractional_values, _constant_cbor)
    return _build(site, fractional_string_values, _constant_string)


def _build(site: Site, general: General, specialize: Specialize) -> Expr:
    """What both hashings compile alike: the strict checks, the array-operator and computed-bucket
    cases (the general path); constant buckets go to the hashing's own fast paths."""
    exprs = site.compile_args()
    if not exprs:
        site.invalid("fractional needs at least one [variant, weight] bucket")
        return const(None)
    # A literal array first is a bucket: the shorthand form, bucketing by the flag key and the
    # targeting key.  Anything else is the bucket-by expression (which may still evaluate to an
    # array, and then both hashings read it as a bucket too: handled by the general path).
    shorthand = isinstance(site.args[0], list)
    _check_constant_buckets(site, exprs, 0 if shorthand else 1)
    fns = [as_fn(e) for e in exprs]

    if site.item:
        # Inside an array operator the data is the current item (as in the reference).
        return dynamic(lambda data: general([fn(data) for fn in fns], data, None))

    flag_key = site.compiler.flag_key
    bucket_exprs = exprs if shorthand else exprs[1:]
    if not all(e.const for e in bucket_exprs):
        return dynamic(lambda data: general([fn(data) for fn in fns], data, flag_key))
    return specialize(flag_key, shorthand, [e.value for e in bucket_exprs], fns[0])


def _constant_string(flag_key: str, shorthand: bool, bucket_values: list[Any], by: Fn) -> Expr:
    table = build_string_table(bucket_values)
    if shorthand:
        if table is None:
            return const(None)
        total, ends = table

        def by_targeting_key(data: Any) -> Any:
            # The hot path of every percentage rollout: hashing and selection inlined.
            key = data.get("targetingKey")
            if key.__class__ is not str and not isinstance(key, str):
                return None
            if not key:
                return None
            try:
                point = (_murmur((flag_key + key).encode(), 0, False) * total) >> 32
            except UnicodeEncodeError:
                return None
            for end, variant in ends:
                if point < end:
                    return variant
            return None

        return dynamic(by_targeting_key)

    def by_expression(data: Any) -> Any:
        value = by(data)
        if value.__class__ is str and table is not None:
            try:
                point = (_murmur(value.encode(), 0, False) * table[0]) >> 32
            except UnicodeEncodeError:
                return None
            for end, variant in table[1]:
                if point < end:
                    return variant
            return None
        return fractional_string_values([value, *bucket_values], data, flag_key)

    return dynamic(by_expression)


def _constant_cbor(flag_key: str, shorthand: bool, bucket_values: list[Any], by: Fn) -> Expr:
    table = build_table(bucket_values)

    if shorthand:
        if table is None:
            return const(None)
        prefix = b"\x82" + encode_text(flag_key)
        total, ends = table
        heads = _SMALL_TEXT_HEADS

        def by_targeting_key(data: Any) -> Any:
            # The hot path of every percentage rollout: encoding and selection inlined.
            key = data.get("targetingKey")
            if (key.__class__ is not str and not isinstance(key, str)) or not key:
                return None
            try:
                raw = key.encode()
            except UnicodeEncodeError:
                return fractional_values(bucket_values, data, flag_key)
            size = len(raw)
            point = (
                _murmur(prefix + (heads[size] if size < 24 else _head(3, size)) + raw, 0, False) * total
            ) >> 32
            for end, variant in ends:
                if point < end:
                    return variant
            return None

        return dynamic(by_targeting_key)

    def general(data: Any, value: Any) -> Any:
        return fractional_values([value, *bucket_values], data, flag_key)

    if table is None:
        # Null for every bucket-by value except an array (which the reference reads as a bucket).
        def malformed(data: Any) -> Any:
            value = by(data)
            return general(data, value) if isinstance(value, list | tuple) else None

        return dynamic(malformed)

    def by_expression(data: Any) -> Any:
        value = by(data)
        if value.__class__ is str:
            try:
                return pick(table, _murmur(encode_text(value), 0, False))
            except UnicodeEncodeError:
                return general(data, value)
        if value is None:
            return None
        if isinstance(value, list | tuple):
            return general(data, value)
        encoded = encode_bucket_value(value)
        if encoded is None:
            return None
        return pick(table, _murmur(encoded, 0, False))

    return dynamic(by_expression)


OPERATORS: dict[str, Operator] = {
    "fractional": Operator(build_fractional, 1, None),
}
