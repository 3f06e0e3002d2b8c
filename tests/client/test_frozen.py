"""Read-only flag values: still plain JSON to every consumer, but no caller can change them."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from vexil.client.frozen import FrozenDict, FrozenList, freeze, thaw

VALUE = {"limits": {"rps": 10, "burst": [1, {"deep": [2, 3]}]}, "name": "x", "on": True, "none": None}


def test_freeze_reaches_every_level_and_keeps_the_data() -> None:
    frozen = freeze(VALUE)
    assert frozen == VALUE and frozen is not VALUE
    assert type(frozen) is FrozenDict and type(frozen["limits"]["burst"]) is FrozenList
    assert type(frozen["limits"]["burst"][1]["deep"]) is FrozenList
    assert isinstance(frozen, dict) and isinstance(frozen["limits"]["burst"], list)
    assert repr(freeze({"a": [1]})) == "{'a': [1]}"
    assert freeze(frozen) is frozen  # already frozen: nothing to do
    assert freeze("text") == "text" and freeze(1.5) == 1.5


MUTATIONS_OF_DICTS = [
    lambda d: d.__setitem__("x", 1),
    lambda d: d.__delitem__("name"),
    lambda d: d.update(x=1),
    lambda d: d.pop("name"),
    lambda d: d.popitem(),
    lambda d: d.setdefault("x", 1),
    lambda d: d.clear(),
    lambda d: d.__ior__({"x": 1}),
]
MUTATIONS_OF_LISTS = [
    lambda v: v.append(1),
    lambda v: v.extend([1]),
    lambda v: v.insert(0, 1),
    lambda v: v.pop(),
    lambda v: v.remove(1),
    lambda v: v.clear(),
    lambda v: v.sort(),
    lambda v: v.reverse(),
    lambda v: v.__setitem__(0, 5),
    lambda v: v.__setitem__(slice(0, 1), [5]),
    lambda v: v.__delitem__(0),
    lambda v: v.__iadd__([1]),
    lambda v: v.__imul__(2),
]


@pytest.mark.parametrize("mutate", MUTATIONS_OF_DICTS)
def test_every_dict_mutation_is_refused(mutate: Any) -> None:
    frozen = freeze(VALUE)
    with pytest.raises(TypeError, match=r"read-only; use copy\.deepcopy"):
        mutate(frozen)
    assert frozen == VALUE


@pytest.mark.parametrize("mutate", MUTATIONS_OF_LISTS)
def test_every_list_mutation_is_refused(mutate: Any) -> None:
    frozen = freeze(VALUE)
    with pytest.raises(TypeError, match="FrozenList"):
        mutate(frozen["limits"]["burst"])
    assert frozen == VALUE


def test_augmented_assignment_on_a_nested_list_is_refused() -> None:
    frozen = freeze(VALUE)
    with pytest.raises(TypeError):
        frozen["limits"]["burst"] += [3]
    assert frozen["limits"]["burst"] == [1, {"deep": [2, 3]}]


def test_copies_serialisation_and_operators_give_plain_containers() -> None:
    frozen = freeze(VALUE)
    mine = copy.deepcopy(frozen)
    assert mine == VALUE and type(mine) is dict and type(mine["limits"]["burst"][1]["deep"]) is list
    mine["limits"]["burst"].append(9)  # the caller's own copy is theirs to change
    assert frozen == VALUE
    shallow = copy.copy(frozen)
    assert type(shallow) is dict and shallow == VALUE
    assert type(copy.copy(frozen["limits"]["burst"])) is list
    assert json.loads(json.dumps(frozen)) == VALUE
    restored = pickle.loads(pickle.dumps(frozen))
    assert restored == VALUE and type(restored) is dict
    assert type(frozen | {"x": 1}) is dict and type(frozen["limits"]["burst"] + [1]) is list
    assert thaw(frozen) == VALUE and type(thaw(frozen)["limits"]) is dict
