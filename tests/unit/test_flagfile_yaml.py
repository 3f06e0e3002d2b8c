"""YAML reads the words on/off/yes/no as booleans: a flags file that writes `defaultVariant: on`
or a variant named `on:` without quotes gets a message that says to quote it."""

from __future__ import annotations

import pytest

from vexil.errors import InvalidArgument
from vexil.flagfile import parse_text

UNQUOTED_DEFAULT = """\
flags:
  f:
    variants: {"on": true, "off": false}
    defaultVariant: on
"""

UNQUOTED_VARIANTS = """\
flags:
  f:
    variants:
      on: true
      off: false
    defaultVariant: "on"
"""


def test_unquoted_default_variant_says_to_quote_it() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_text(UNQUOTED_DEFAULT, "local")
    text = str(caught.value)
    assert "flags.f.defaultVariant" in text and 'defaultVariant: "on"' in text, text


def test_unquoted_variant_names_say_to_quote_them() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_text(UNQUOTED_VARIANTS, "local")
    text = str(caught.value)
    assert "flags.f.variants" in text and '"on"' in text and "quote" in text, text


def test_quoted_names_load() -> None:
    parsed = parse_text(
        UNQUOTED_VARIANTS.replace("on: true", '"on": true').replace("off:", '"off":'), "local"
    )
    assert parsed.flags[0].variants == {"on": True, "off": False}
    assert parsed.flags[0].default_variant == "on"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("owner: 123", "flags.f.owner"),  # YAML reads an unquoted number as a number
        ("description: [a, b]", "flags.f.description"),
        ("metadata: []", "flags.f.metadata"),
        ('targeting: ""', "flags.f.targeting"),
        ("targeting: false", "flags.f.targeting"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_not_stored_as_other_text(line: str, field: str) -> None:
    text = UNQUOTED_DEFAULT.replace("defaultVariant: on", f'defaultVariant: "on"\n    {line}')
    with pytest.raises(InvalidArgument) as caught:
        parse_text(text, "local")
    assert caught.value.field.endswith(field), caught.value


def test_a_key_with_nothing_after_it_is_empty() -> None:
    empty = 'defaultVariant: "on"\n    description:\n    owner:'
    text = UNQUOTED_DEFAULT.replace("defaultVariant: on", empty)
    flag = parse_text(text, "local").flags[0]
    assert (flag.description, flag.owner, flag.metadata, flag.targeting) == ("", "", {}, None)
