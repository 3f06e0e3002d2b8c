"""What a console write takes from its body, against a real server (the open profile).

The README promises the console the API's rules: a definition is checked as `CreateFlag` and
`UpdateFlag` check it, a field of the wrong type is refused naming it (never stored as some text
standing for it), the state is the kill switch's alone, and a body of up to 512 KiB is read
whole however the network delivers it.  The expected answers are those rules, written here.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.support.calls import raw_http
from tests.support.console import answered, open_session

ON_OFF = {"on": True, "off": False}


async def stored(http: aiohttp.ClientSession, base: str, key: str) -> dict[str, Any]:
    async with http.get(f"{base}/ui/api/flags/{key}", params={"env": "local"}) as answer:
        assert answer.status == 200, await answer.text()
        flag: dict[str, Any] = (await answer.json())["flag"]
        return flag


async def test_a_large_definition_sent_in_pieces_is_read_whole(open_console) -> None:
    """A 280 KB definition (the API takes up to 300 KB) arriving in 16 KB pieces: one read of the socket
    holds only the first pieces, so a body read once was refused as 'not valid JSON'."""
    http, base = open_console
    headers = await open_session(http, base)
    variants = {"on": "x" * 140_000, "off": "y" * 140_000}
    flag = {"key": "big-body", "variants": variants, "defaultVariant": "on"}
    body = json.dumps({"environment": "local", "flag": flag}).encode()
    sent = {"Cookie": http.headers["Cookie"], "X-CSRF-Token": headers["X-CSRF-Token"]}
    lines = "".join(f"{name}: {value}\r\n" for name, value in sent.items())
    port = int(base.rsplit(":", 1)[1])
    status, answer = await raw_http(port, "POST", "/ui/api/flags", lines.encode(), body, piece=16 * 1024)
    assert status == 201, answer
    got = await stored(http, base, "big-body")
    assert got["variants"] == flag["variants"]


WRONG_TYPES = [
    # (field sent in the definition, its value, the field the refusal names)
    ("description", {"a": 1}, "flag.description"),
    ("description", 12, "flag.description"),
    ("owner", 123, "flag.owner"),
    ("owner", ["team"], "flag.owner"),
    ("metadata", [], "flag.metadata"),
    ("metadata", False, "flag.metadata"),
    ("targeting", [], "flag.targeting"),
    ("targeting", "", "flag.targeting"),
    ("targeting", 0, "flag.targeting"),
    ("targeting", False, "flag.targeting"),
]


async def test_a_field_of_the_wrong_type_is_refused_naming_it(open_console) -> None:
    http, base = open_console
    headers = await open_session(http, base)
    flag = {"key": "typed", "variants": ON_OFF, "defaultVariant": "off", "owner": "team-a"}
    async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=headers) as created:
        assert created.status == 201
    for name, value, field in WRONG_TYPES:
        for method, path, body in (
            ("POST", "/ui/api/flags", {"flag": {**flag, "key": "typed-new", name: value}}),
            ("PUT", "/ui/api/flags/typed", {"expectedVersion": 1, "flag": {**flag, name: value}}),
        ):
            status, error = await answered(http, method, f"{base}{path}", json=body, headers=headers)
            assert (status, error.get("code"), error.get("field")) == (400, "INVALID_ARGUMENT", field), error
    got = await stored(http, base, "typed")
    assert (got["version"], got["owner"], got.get("description", "")) == (1, "team-a", "")
    async with http.get(f"{base}/ui/api/flags/typed-new", params={"env": "local"}) as missing:
        assert missing.status == 404
    # Null is "nothing", as a YAML key with no value is: text becomes "", metadata {}, no rule.
    nothing = {**flag, "description": None, "owner": None, "metadata": None, "targeting": None}
    body = {"expectedVersion": 1, "flag": nothing}
    async with http.put(f"{base}/ui/api/flags/typed", json=body, headers=headers) as saved:
        assert saved.status == 200, await saved.text()
    got = await stored(http, base, "typed")
    assert (got.get("owner", ""), got.get("description", ""), got.get("targeting")) == ("", "", None)


async def test_an_edit_naming_a_state_is_checked_as_update_flag_checks_it(open_console) -> None:
    """README: only the kill switch changes a flag's state; UpdateFlag refuses a state that
    differs (KILL_SWITCH_ADMIN_ONLY) and an unknown one (INVALID_ARGUMENT).  An edit that drops
    the state it was sent would say 'saved' while ignoring half of what the person asked."""
    http, base = open_console
    headers = await open_session(http, base)
    flag = {"key": "stated", "variants": ON_OFF, "defaultVariant": "on"}
    async with http.post(f"{base}/ui/api/flags", json={"flag": flag}, headers=headers) as created:
        assert created.status == 201
    kill = {"environment": "local", "key": "stated", "killed": True, "reason": "incident"}
    async with http.post(f"{base}/ui/api/kill", json=kill, headers=headers) as killed:
        assert killed.status == 200, await killed.text()
    version = (await stored(http, base, "stated"))["version"]
    for state, reason, field in (
        ("ENABLED", "KILL_SWITCH_ADMIN_ONLY", ""),
        ("BANANA", "INVALID_ARGUMENT", "flag.state"),
    ):
        body = {"expectedVersion": version, "flag": {**flag, "state": state}}
        status, error = await answered(http, "PUT", f"{base}/ui/api/flags/stated", json=body, headers=headers)
        assert (status, error.get("reason"), error.get("field")) == (400, reason, field), error
    # The same state as stored, or none, saves; the flag stays killed either way.
    for named in ({"state": "DISABLED"}, {}):
        version = (await stored(http, base, "stated"))["version"]
        body = {"expectedVersion": version, "flag": {**flag, "description": "edited", **named}}
        async with http.put(f"{base}/ui/api/flags/stated", json=body, headers=headers) as saved:
            assert saved.status == 200, await saved.text()
        assert (await stored(http, base, "stated"))["state"] == "DISABLED"
