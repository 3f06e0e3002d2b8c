"""The web console end to end: headless Chromium against a real `vexil serve`, with the CLI
writing concurrently.  Expected values come from the tests' own tables and from the CLI's view of
the stored flags, never from the console's code."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page, expect

from tests.console.conftest import SCREENSHOTS, Console, sign_in

BOOLEAN = json.dumps({"variants": {"on": True, "off": False}, "defaultVariant": "off"})


def fill_definition(page: Page, definition: dict) -> None:
    page.locator("#definition").fill(json.dumps(definition, indent=2))


def test_sign_in_sets_a_strict_session_cookie_and_sign_out_ends_it(page: Page, console: Console) -> None:
    page.goto(console.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key or JWT").fill("vxk_notakey")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_be_visible()
    expect(page.locator("#who")).to_have_text("")

    before = time.time()
    sign_in(page, console)
    expect(page.get_by_role("heading", name="Flags")).to_be_visible()
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "vexil_console"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert before < cookie["expires"] <= before + 3600 + 5
    assert page.evaluate("document.cookie") == ""  # scripts never see the session

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "vexil_console"]
    status = page.evaluate("fetch('/ui/api/flags?env=local').then(r => r.status)")
    assert status == 401


def test_create_a_flag_and_an_invalid_rule_shows_its_error_inline(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.get_by_role("link", name="New flag").click()
    page.get_by_label("Key").fill("console-created")
    page.get_by_label("Owner").fill("web-team")
    fill_definition(
        page,
        {
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"nosuchop": [1]}, "on", "off"]},
        },
    )
    page.get_by_role("button", name="Create").click()
    error = page.locator("#definition-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("flag.targeting.if[0].nosuchop")
    expect(error).to_contain_text("nosuchop")
    assert "console-created" not in console.cli("flags", "list").stdout  # nothing was written

    fill_definition(
        page,
        {
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", "off"]},
        },
    )
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="console-created")).to_be_visible()
    stored = console.flag("console-created")
    assert stored["owner"] == "web-team" and stored["default_variant"] == "off"
