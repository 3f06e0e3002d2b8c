"""An error class names its status and reason in its declaration, and inherits what it leaves out.

The values expected here are written by hand; the classes are made in the test, so a change to
how `VexilError` takes its class keywords shows here before any real error class goes wrong.
"""

from __future__ import annotations

import pytest

from vexil.errors import NotFound, VexilError
from vexil.reasons import Reason


def test_class_keywords_set_the_status_and_the_reason() -> None:
    class Gone(VexilError, code="NOT_FOUND", reason=Reason.FLAG_NOT_FOUND):
        """A test error."""

    assert (Gone.code, Gone.reason) == ("NOT_FOUND", Reason.FLAG_NOT_FOUND)
    assert (Gone("x").code, Gone("x").reason) == ("NOT_FOUND", Reason.FLAG_NOT_FOUND)
    assert (VexilError.code, VexilError.reason) == ("UNKNOWN", Reason.INTERNAL)  # the base is untouched


def test_a_narrower_cause_keeps_the_status_it_does_not_name() -> None:
    class KeyGone(NotFound, reason=Reason.API_KEY_NOT_FOUND):
        """A test error."""

    class JustNotFound(NotFound):
        """A test error."""

    assert (KeyGone.code, KeyGone.reason) == ("NOT_FOUND", Reason.API_KEY_NOT_FOUND)
    assert (JustNotFound.code, JustNotFound.reason) == ("NOT_FOUND", Reason.NOT_FOUND)
    assert (NotFound.code, NotFound.reason) == ("NOT_FOUND", Reason.NOT_FOUND)


def test_an_unknown_class_keyword_is_refused() -> None:
    with pytest.raises(TypeError):

        class Misspelt(VexilError, reasn=Reason.NOT_FOUND):  # type: ignore[call-arg]
            """A test error."""
