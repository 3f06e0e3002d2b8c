"""The client's `ErrorCode` repeats the engine's codes on purpose: it is OpenFeature's vocabulary,
a superset of the engine's (an enum with members cannot be extended), so local answers map onto it
by name.  These tables, written by hand, keep the two from drifting apart: a code the engine
gains must be added to the client too, or local mode could not report it.
"""

from __future__ import annotations

import pytest
from openfeature.exception import ErrorCode as OpenFeatureErrorCode

from vexil.client import ErrorCode
from vexil.client.details import from_resolution
from vexil.engine import ErrorCode as EngineErrorCode
from vexil.engine import Reason, Resolution

ENGINE_CODES = {"FLAG_NOT_FOUND", "TYPE_MISMATCH", "PARSE_ERROR", "GENERAL"}
"""flagd's error codes: what the engine (and so the server) answers with."""
CLIENT_ONLY_CODES = {"PROVIDER_NOT_READY", "INVALID_CONTEXT", "PROVIDER_FATAL"}
"""What only a client can run into (no snapshot yet, a refused context, refused credentials)."""


def test_the_client_codes_are_the_engine_codes_plus_the_clients_own() -> None:
    assert {code.value for code in EngineErrorCode} == ENGINE_CODES
    assert {code.value for code in ErrorCode} == ENGINE_CODES | CLIENT_ONLY_CODES


def test_every_client_code_is_an_openfeature_code() -> None:
    assert {code.value for code in ErrorCode} <= {code.value for code in OpenFeatureErrorCode}


@pytest.mark.parametrize("name", sorted(ENGINE_CODES))
def test_a_local_answer_reports_the_engine_code_under_the_same_name(name: str) -> None:
    resolution = Resolution(None, None, Reason.ERROR, EngineErrorCode(name), "why")
    details = from_resolution("flag", "fallback", resolution, flag_version=3, config_version=7)
    assert (details.error_code, details.value, details.error_message) == (ErrorCode(name), "fallback", "why")
