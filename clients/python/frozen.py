"""Read-only JSON values: how the client hands out object flag values without copying them.

Local mode answers from one shared snapshot, so an object value given to a caller is the very
object every other caller gets next.  Copying it on each call would cost more than the whole
evaluation; handing it out mutable would let one caller's `value["limit"] = 0` change the flag
for the whole process.  Instead the client freezes object values once, when flag data arrives,
into `FrozenDict` and `FrozenList`: still a `dict` and a `list` (isinstance, ==, json.dumps,
protobuf Struct all work), but every mutation raises TypeError with a message saying how to get
a copy of one's own (`copy.deepcopy(value)` gives plain, mutable containers all the way down).

Remote mode freezes what it decodes too, so code behaves the same in both modes.
"""

from __future__ import annotations

from typing import Any, NoReturn

_HOW = "flag values are shared and read-only; use copy.deepcopy(value) for a mutable copy"


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(f"cannot modify a {type(self).__name__}: {_HOW}")


class FrozenDict(dict[str, Any]):
    """A `dict` that refuses changes (an object flag value as the client hands it out)."""

    __slots__ = ()

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    """A `list` that refuses changes (an array inside, or as, an object flag value)."""

    __slots__ = ()

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """`value` with every dict and list in it (at any depth) made read-only; scalars as they are."""
    if isinstance(value, dict):
        if value.__class__ is FrozenDict:
            return value
        return FrozenDict((key, freeze(item)) for key, item in value.items())
    if isinstance(value, list):
        if value.__class__ is FrozenList:
            return value
        return FrozenList(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable deep copy of a (frozen or not) JSON value."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value
