"""The web console end to end: headless Chromium against a real `vexil serve`, with the CLI
writing concurrently.  Expected values come from the tests' own tables and from the CLI's view of
the stored flags, never from the console's code."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import jwt
import pytest
from playwright.sync_api import Page, expect

from tests.support.console import SCREENSHOTS, Console, cli, sign_in
from tests.support.servers import VEXIL, ServerProcess

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
    page.get_by_label("Owner").fill("o" * 300)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#owner-error")).to_contain_text("flag.owner")  # next to the field it names
    page.get_by_label("Owner").fill("web-team")
    page.get_by_role("button", name="Create").click()
    error = page.locator("#definition-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("flag.targeting.if[0].nosuchop")
    assert error.inner_text().count("flag.targeting.if[0].nosuchop") == 1  # the path, once
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


PLAN_RULE = {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", "off"]}
TRY_TABLE = [
    # context, saved flag (rule: plan == pro -> on), draft (rule inverted: plan != pro -> on)
    ({"plan": "pro"}, ("true", "on", "TARGETING_MATCH"), ("false", "off", "TARGETING_MATCH")),
    ({"plan": "free"}, ("false", "off", "TARGETING_MATCH"), ("true", "on", "TARGETING_MATCH")),
]


def make_flag(console: Console, key: str, *extra: str) -> None:
    console.cli(
        "flags", "create", key, "--variants", '{"on": true, "off": false}', "--default", "off",
        "--targeting", json.dumps(PLAN_RULE), *extra,
    )  # fmt: skip


def open_flag(page: Page, console: Console, key: str) -> None:
    page.goto(f"{console.url}#/flag/{key}")
    expect(page.get_by_role("heading", name=key, exact=True)).to_be_visible()


def evaluated_reason(console: Console, key: str) -> str:
    """The reason the API gives when evaluating `key` (an independent view of the kill switch)."""
    done = console.cli("evaluate", key, "--context", '{"plan": "pro"}', "--json", role="evaluator")
    return str(json.loads(done.stdout)["reason"])


def test_try_it_shows_the_saved_flag_and_the_draft_side_by_side(page: Page, console: Console) -> None:
    make_flag(console, "try-me")
    sign_in(page, console)
    open_flag(page, console, "try-me")
    inverted = {"if": [{"!=": [{"var": "plan"}, "pro"]}, "on", "off"]}
    fill_definition(
        page, {"variants": {"on": True, "off": False}, "defaultVariant": "off", "targeting": inverted}
    )
    for context, saved, draft in TRY_TABLE:
        page.locator("#try-context").fill(json.dumps(context))
        page.get_by_role("button", name="Evaluate").click()
        for box, (value, variant, reason) in (("#try-current", saved), ("#try-draft", draft)):
            expect(page.locator(f"{box} .value")).to_have_text(value)
            expect(page.locator(f"{box} .variant")).to_have_text(variant)
            expect(page.locator(f"{box} .reason")).to_have_text(reason)
    assert console.flag("try-me")["version"] == "1"  # trying a draft writes nothing

    page.locator("#try-context").fill('{"plan": ')
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#try-error")).to_contain_text("Not valid JSON")


def test_a_stale_edit_shows_what_changed_and_never_overwrites_it(page: Page, console: Console) -> None:
    make_flag(console, "stale-edit", "--owner", "first-owner")
    sign_in(page, console)
    open_flag(page, console, "stale-edit")
    page.get_by_label("Owner", exact=True).fill("console-owner")
    # Meanwhile, someone changes the flag through the CLI.
    console.cli("flags", "update", "stale-edit", "--default", "on", "--reason", "from the CLI")
    page.get_by_role("button", name="Save").click()
    conflict = page.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("version 2")
    expect(conflict.locator("del")).to_contain_text('"defaultVariant": "off"')
    expect(conflict.locator("ins")).to_contain_text('"defaultVariant": "on"')
    stored = console.flag("stale-edit")
    assert (stored["version"], stored["owner"], stored["default_variant"]) == ("2", "first-owner", "on")

    page.get_by_role("button", name="Load the current version into the editor").click()
    page.get_by_label("Owner", exact=True).fill("console-owner")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flag-version")).to_have_text("version 3")
    stored = console.flag("stale-edit")
    assert (stored["owner"], stored["default_variant"]) == ("console-owner", "on")


def test_a_change_made_through_the_cli_appears_live(page: Page, console: Console) -> None:
    sign_in(page, console)
    expect(page.locator("body[data-live]")).to_be_attached()  # the event stream is open
    page.get_by_label("Search").fill("live-")
    console.cli("flags", "create", "live-from-cli", "--owner", "cli-team", "--default", "on")
    row = page.locator('tr[data-key="live-from-cli"]')
    expect(row).to_contain_text("cli-team")
    console.cli("flags", "update", "live-from-cli", "--owner", "other-team")
    expect(row).to_contain_text("other-team")
    expect(row).to_contain_text("2")


APPLIED_BY_THE_ONE_SERVER = re.compile(r"Applied by 1/1 replicas in \d+ ms\.")
"""The propagation status after a write: the module's server is the fleet's only replica."""


def test_kill_and_revive_a_flag_and_the_environment_with_a_reason(page: Page, console: Console) -> None:
    make_flag(console, "kill-me")
    sign_in(page, console)
    open_flag(page, console, "kill-me")
    page.locator("#flag-kill").click()
    dialog = page.locator("#dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Kill now").click()  # no reason: refused
    expect(page.locator("#kill-error")).to_contain_text("reason")
    assert console.flag("kill-me")["state"] == "ENABLED"
    dialog.get_by_label("Reason").fill("incident 42")
    dialog.get_by_role("button", name="Kill now").click()
    expect(page.locator("#flag-state")).to_have_text("Killed")
    assert console.flag("kill-me")["state"] == "DISABLED"
    expect(page.locator("#status")).to_contain_text(APPLIED_BY_THE_ONE_SERVER)
    page.locator("#flag-kill").click()
    dialog.get_by_label("Reason").fill("fixed")
    dialog.get_by_role("button", name="Revive now").click()
    expect(page.locator("#flag-state")).to_have_text("Enabled")
    assert console.flag("kill-me")["state"] == "ENABLED"

    page.get_by_role("link", name="Flags").click()
    page.locator("#env-kill").click()
    dialog.get_by_label("Reason").fill("whole environment drill")
    dialog.get_by_role("button", name="Kill now").click()
    expect(page.get_by_role("alert")).to_contain_text("whole environment drill")
    assert evaluated_reason(console, "kill-me") == "DISABLED"  # the whole environment is off
    expect(page.locator("#status")).to_contain_text(APPLIED_BY_THE_ONE_SERVER)
    page.locator("#env-kill").click()
    dialog.get_by_label("Reason").fill("drill over")
    dialog.get_by_role("button", name="Revive now").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert evaluated_reason(console, "kill-me") == "TARGETING_MATCH"

    open_changes(page)
    page.get_by_label("Flag", exact=True).fill("kill-me")
    page.get_by_label("Flag", exact=True).press("Enter")
    page.get_by_label("Kind").select_option("KILL")
    expect(page.locator("table.changes tbody tr")).to_have_count(2)
    expect(page.locator("table.changes")).to_contain_text("incident 42")


def open_changes(page: Page) -> None:
    """Go to the change log and wait until it is the page shown.

    The flags page stays on screen until the change log has rendered, and its filter form is
    labelled "Filter flags": a label lookup made before the switch would find that form instead of
    the change log's "Flag" field.
    """
    page.get_by_role("link", name="Changes").click()
    expect(page.get_by_role("heading", level=1, name="Changes", exact=True)).to_be_visible()


def test_history_diff_and_rollback_with_a_reason(page: Page, console: Console) -> None:
    make_flag(console, "roll-me", "--owner", "v1-owner")
    console.cli("flags", "update", "roll-me", "--owner", "v2-owner", "--default", "on")
    sign_in(page, console)
    open_flag(page, console, "roll-me")
    diff = page.locator("#diff")
    expect(diff.locator("del")).to_contain_text(['"defaultVariant": "off"', '"owner": "v1-owner"'])
    expect(diff.locator("ins")).to_contain_text(['"defaultVariant": "on"', '"owner": "v2-owner"'])
    page.locator('button.rollback[data-version="1"]').click()
    page.locator("#rollback-reason").fill("v2 broke checkout")
    page.locator("#rollback-confirm").click()
    expect(page.locator("#flag-version")).to_have_text("version 3")
    stored = console.flag("roll-me")
    assert (stored["version"], stored["owner"], stored["default_variant"]) == ("3", "v1-owner", "off")
    changes = console.cli("flags", "changes", "--key", "roll-me", "--json").stdout
    assert "v2 broke checkout" in changes


def test_an_editor_sees_no_kill_control_and_a_forged_kill_is_refused(page: Page, console: Console) -> None:
    make_flag(console, "editor-view")
    sign_in(page, console, role="editor")
    open_flag(page, console, "editor-view")
    expect(page.get_by_role("button", name="Save")).to_be_visible()  # editors edit
    expect(page.locator("#flag-kill")).to_have_count(0)
    page.get_by_role("link", name="Flags").click()
    expect(page.get_by_role("heading", name="Flags")).to_be_visible()
    expect(page.locator("#env-kill")).to_have_count(0)
    expect(page.get_by_role("link", name="Keys")).to_have_count(0)
    forged = page.evaluate(
        """async () => {
            const session = await (await fetch('/ui/api/session')).json();
            const r = await fetch('/ui/api/kill', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf},
                body: JSON.stringify({key: 'editor-view', killed: true, reason: 'forged'})});
            return [r.status, await r.json()];
        }"""
    )
    assert forged[0] == 403 and forged[1]["error"]["code"] == "PERMISSION_DENIED"
    assert console.flag("editor-view")["state"] == "ENABLED"


def test_a_write_without_the_csrf_token_is_refused(page: Page, console: Console) -> None:
    make_flag(console, "csrf-target")
    sign_in(page, console)
    answers = page.evaluate(
        """async () => {
            const body = JSON.stringify({environment: 'local', expectedVersion: 1,
                flag: {variants: {on: true, off: false}, defaultVariant: 'on'}});
            const send = (headers) => fetch('/ui/api/flags/csrf-target', {method: 'PUT',
                headers: {'Content-Type': 'application/json', ...headers}, body})
                .then(async r => [r.status, (await r.json()).error.reason]);
            return [await send({}), await send({'X-CSRF-Token': 'guessed'})];
        }"""
    )
    # README: CSRF_TOKEN_INVALID, not ROLE_TOO_LOW (an admin's role may call UpdateFlag).
    assert answers == [[403, "CSRF_TOKEN_INVALID"], [403, "CSRF_TOKEN_INVALID"]]
    stored = console.flag("csrf-target")
    assert (stored["version"], stored["default_variant"]) == ("1", "off")


def test_japanese_labels_for_accept_language_ja_and_the_switch(page: Page, console: Console) -> None:
    context = page.context.browser.new_context(locale="ja-JP")
    try:
        japanese = context.new_page()
        japanese.goto(console.url)
        expect(japanese.get_by_role("heading", name="サインイン")).to_be_visible()
        expect(japanese.locator("html")).to_have_attribute("lang", "ja")
        japanese.get_by_label("API キーまたは JWT").fill(console.tokens["admin"])
        japanese.get_by_role("button", name="サインイン").click()
        expect(japanese.get_by_role("heading", name="フラグ", exact=True)).to_be_visible()
        expect(japanese.get_by_role("link", name="変更履歴")).to_be_visible()
        japanese.screenshot(path=str(SCREENSHOTS / "japanese.png"), full_page=True)
        japanese.get_by_label("言語").select_option("en")
        expect(japanese.get_by_role("heading", name="Flags", exact=True)).to_be_visible()
        japanese.reload()  # the choice is remembered
        expect(japanese.get_by_role("heading", name="Flags", exact=True)).to_be_visible()
    finally:
        context.close()
    page.goto(console.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_keys_are_created_rotated_and_revoked_and_a_token_is_shown_once(page: Page, console: Console) -> None:
    make_flag(console, "key-check")
    sign_in(page, console)
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Role").select_option("evaluator")
    page.get_by_label("Description").fill("made in the console")
    page.get_by_role("button", name="Create").click()
    token = page.locator("#token")
    expect(token).to_contain_text("vxk_")
    first = token.inner_text()
    works = cli(console.server.target, first, "evaluate", "key-check", "--json")
    assert works.returncode == 0 and json.loads(works.stdout)["reason"] == "TARGETING_MATCH", works.stderr
    row = page.locator("tr", has_text="made in the console")
    row.get_by_role("button", name="Rotate").click()
    expect(token).not_to_have_text(first)
    rotated = token.inner_text()
    page.reload()
    expect(page.locator("#token")).to_have_count(0)  # shown once: gone after a reload
    page.locator("tr", has_text="made in the console").get_by_role("button", name="Revoke").click()
    page.locator("#revoke-reason").fill("no longer needed")
    page.locator("#revoke-confirm").click()
    expect(page.locator("tr", has_text="made in the console")).to_have_count(0)
    refused = cli(console.server.target, rotated, "evaluate", "key-check", "--json")
    assert refused.returncode != 0 and "revoked" in refused.stderr


def test_health_shows_the_operations_guide_table(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.get_by_role("link", name="Health").click()
    expect(page.locator("#health-state")).to_contain_text("SERVING")
    rows = page.locator("table.health tbody tr")
    expect(rows).to_have_count(7)
    latency = page.locator('tr[data-indicator="api_response_time"]')
    expect(latency).to_contain_text("100 ms")  # target, warning and critical from the guide
    expect(latency).to_contain_text("200 ms")
    expect(latency).to_contain_text("500 ms")
    expect(page.locator("body")).to_contain_text("memory")
    # This server's replica row, checked against what GetStatus tells the CLI.
    http_url = f"http://127.0.0.1:{console.server.http_port}"
    (env,) = json.loads(console.cli("status", "--http-url", http_url, "--json").stdout)["environments"]
    (me,) = [r for r in env["replicas"] if r.get("self")]
    row = page.locator("table.replicas tbody tr[data-self]")
    expect(row).to_have_count(1)
    expect(row.locator("th")).to_have_text(env["name"])
    expect(row.locator("td").nth(0)).to_contain_text(me["id"])
    expect(row.locator("td").nth(0)).to_contain_text("this server")
    expect(row.locator("td").nth(1)).to_have_text(me["address"])
    expect(row.locator("td").nth(2)).to_have_text(str(me["config_version"]))


def test_a_phone_width_fits_without_sideways_scrolling(page: Page, console: Console) -> None:
    make_flag(console, "phone-flag")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, console)
    expect(page.locator("tr[data-key]").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.reload()
    expect(page.locator("body[data-ready]")).to_be_attached()
    page.keyboard.press("Tab")  # the first stop is the skip link, for keyboard users
    assert page.evaluate("document.activeElement.className") == "skip"
    open_flag(page, console, "phone-flag")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


FILTER_TABLE = [
    # (owner, tag, state, killed) -> the keys listed, all searched with "filt-"
    (("", "", "", ""), ["filt-alpha", "filt-beta", "filt-gamma"]),
    (("team-a", "", "", ""), ["filt-alpha", "filt-gamma"]),
    (("", "red", "", ""), ["filt-alpha", "filt-beta"]),
    (("", "", "DISABLED", ""), ["filt-gamma"]),
    (("", "", "", "no"), ["filt-alpha", "filt-beta"]),
    (("team-a", "", "", "yes"), ["filt-gamma"]),
    (("team-b", "blue", "ENABLED", "no"), ["filt-beta"]),
    (("nobody", "", "", ""), []),
]


LISTED = """expected => JSON.stringify(
    [...document.querySelectorAll('table.flags tbody tr')].map(row => row.dataset.key)
) === JSON.stringify(expected)"""


def test_the_flag_list_filters_by_search_owner_tag_state_and_killed(page: Page, console: Console) -> None:
    console.cli("flags", "create", "filt-alpha", "--owner", "team-a", "--tag", "red")
    console.cli("flags", "create", "filt-beta", "--owner", "team-b", "--tag", "red", "--tag", "blue")
    console.cli("flags", "create", "filt-gamma", "--owner", "team-a")
    console.cli("flags", "kill", "filt-gamma", "--reason", "filter test")
    sign_in(page, console)
    page.get_by_label("Search").fill("filt-")
    for (owner, tag, state, killed), keys in FILTER_TABLE:
        page.get_by_label("Owner").fill(owner)
        page.get_by_label("Tag").fill(tag)
        page.get_by_label("State").select_option(state)
        page.get_by_label("Killed").select_option(killed)
        # The list settles on exactly these keys (bounded wait; an earlier filter's list may show
        # for a moment while the new one is fetched).
        page.wait_for_function(LISTED, arg=keys)
        expect(page.locator("#flag-count")).to_have_text(f"{len(keys)} of {len(keys)} flags")

    open_changes(page)
    page.get_by_label("Person").fill("nobody-at-all")
    page.get_by_label("Person").press("Enter")
    expect(page.locator("table.changes tbody tr")).to_have_count(0)
    actor = console.flag("filt-gamma")["updated_by"]
    page.get_by_label("Person").fill(actor)
    page.get_by_label("Person").press("Enter")
    page.get_by_label("Flag", exact=True).fill("filt-gamma")
    page.get_by_label("Flag", exact=True).press("Enter")
    expect(page.locator("table.changes tbody tr")).to_have_count(2)  # created, killed


def ofrep(console: Console, key: str) -> dict:
    """The flag evaluated over OFREP: JSON from the server, read by Python, which keeps 1.0 a
    float and every integer exact (an independent view of the stored values)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{console.server.http_port}/ofrep/v1/evaluate/flags/{key}",
        data=b'{"context": {}}',
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {console.tokens['evaluator']}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def create_in_page(page: Page, console: Console, key: str, definition: str) -> None:
    """Create a flag through the page's form, with `definition` as typed JSON text (the CLI's
    options go through protobuf doubles, so only the page can send some numbers exactly)."""
    page.goto(f"{console.url}#/new")
    page.locator("#new-key").fill(key)
    page.locator("#definition").fill(definition)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=key, exact=True)).to_be_visible()


# Numbers a JavaScript double cannot hold as written: each must be stored and kept as sent.
EXACT = (
    '{"variants": {"ratio": 1.0, "big": 9007199254740993}, "defaultVariant": "ratio",'
    ' "metadata": {"id": 9007199254740993, "zero": -0.0}}'
)


def test_numbers_are_kept_as_written_through_create_and_an_edit_of_other_fields(
    page: Page, console: Console
) -> None:
    sign_in(page, console)
    create_in_page(page, console, "exact-numbers", EXACT)
    expected = {"value": 1.0, "metadata": {"id": 9007199254740993, "zero": -0.0}}
    for _ in range(2):
        answer = ofrep(console, "exact-numbers")
        assert type(answer["value"]) is float and answer["value"] == expected["value"], answer
        assert answer["metadata"] == expected["metadata"] and str(answer["metadata"]["zero"]) == "-0.0"
        page.locator("#edit-description").fill("only this changes")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#flag-version")).to_contain_text("version")
    assert console.flag("exact-numbers")["description"] == "only this changes"


def test_a_save_without_edits_keeps_every_text_field_as_stored(page: Page, console: Console) -> None:
    console.cli(
        "flags", "create", "text-kept", "--default", "on", "--owner", "  spaced team ",
        "--description", "first line\nsecond line", "--tag", "a,b", "--tag", "c",
    )  # fmt: skip
    sign_in(page, console)
    open_flag(page, console, "text-kept")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flag-version")).to_have_text("version 2")
    stored = console.flag("text-kept")
    assert (stored["owner"], stored["description"], stored["tags"]) == (
        "  spaced team ",
        "first line\nsecond line",
        ["a,b", "c"],
    )


def test_a_browser_that_cannot_keep_numbers_exactly_refuses_to_save(page: Page, console: Console) -> None:
    """Without JSON source text access (browsers before 2025) every number is read as a double;
    the editor refuses rather than save a definition it may have changed."""
    page.add_init_script("delete JSON.rawJSON;")
    console.cli("flags", "create", "old-browser", "--default", "on")
    sign_in(page, console)
    open_flag(page, console, "old-browser")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#definition-error")).to_contain_text("cannot keep every number")
    assert console.flag("old-browser")["version"] == "1"


def test_a_flag_under_the_environment_kill_switch_says_so_on_its_own_page(
    page: Page, console: Console
) -> None:
    """README: the environment kill switch turns every flag off; the flag's page must not say
    "Enabled" while the API answers DISABLED (the flag's own state stays ENABLED)."""
    make_flag(console, "env-killed-view")
    sign_in(page, console)
    open_flag(page, console, "env-killed-view")
    expect(page.locator("#flag-state")).to_have_text("Enabled")
    console.cli("flags", "kill", "--all", "--reason", "env drill for one flag's page")
    try:
        assert evaluated_reason(console, "env-killed-view") == "DISABLED"
        assert console.flag("env-killed-view")["state"] == "ENABLED"  # its own switch is untouched
        expect(page.locator("#flag-state")).to_have_text("Killed (environment)")  # live
        expect(page.locator("#env-notice")).to_contain_text("env drill for one flag's page")
        page.reload()
        expect(page.locator("#flag-state")).to_have_text("Killed (environment)")
        expect(page.locator("#flag-kill")).to_have_text("Kill")  # the flag's own switch is still on
    finally:
        console.cli("flags", "kill", "--all", "--revive", "--reason", "drill over")
    expect(page.locator("#flag-state")).to_have_text("Enabled")
    expect(page.locator("#env-notice")).to_be_empty()


def test_a_diff_shows_a_change_anywhere_in_a_long_definition(page: Page, console: Console) -> None:
    """A change past line 2,000 of a definition is shown as a change, never as "no change"; a
    change too large to align line by line is shown whole, and the page says so."""
    users = [f"user-{i}" for i in range(2500)]

    def rule(listed: list[str]) -> str:
        return json.dumps({"if": [{"in": [{"var": "targetingKey"}, listed]}, "on", "off"]})

    console.cli(
        "flags", "create", "long-diff", "--variants", '{"on": true, "off": false}', "--default", "off",
        "--targeting", rule(users),
    )  # fmt: skip
    console.cli("flags", "update", "long-diff", "--targeting", rule([*users[:-1], "attacker"]))
    sign_in(page, console)
    open_flag(page, console, "long-diff")
    diff = page.locator("#diff")
    expect(diff.locator("del")).to_have_text(['-         "user-2499"'])  # the one line that changed
    expect(diff.locator("ins")).to_have_text(['+         "attacker"'])
    expect(diff.locator(".diff-note")).to_have_count(0)

    console.cli("flags", "update", "long-diff", "--targeting", rule(users[::-1]))
    page.reload()
    expect(diff.locator(".diff-note")).to_contain_text("2500 lines were replaced by 2500")
    expect(diff.locator("del")).to_have_count(2500)
    expect(diff.locator("ins")).to_have_count(2500)


PAGED = 1010
"""Flags the paging test imports: more than the list shows at once (1,000, README)."""


def test_the_flag_list_history_and_changes_reach_their_older_entries(
    page: Page, console: Console, tmp_path
) -> None:
    flags = {
        f"paged-{i:04}": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}
        for i in range(PAGED)
    }
    (tmp_path / "paged.json").write_text(json.dumps({"flags": flags}))
    console.cli("flags", "import", str(tmp_path / "paged.json"))
    sign_in(page, console)
    page.get_by_label("Search").fill("paged-")
    expect(page.locator("#flag-count")).to_have_text(f"1000 of {PAGED} flags")
    page.locator("#flags-more").click()
    expect(page.locator("#flag-count")).to_have_text(f"{PAGED} of {PAGED} flags")
    expect(page.locator("table.flags tbody tr")).to_have_count(PAGED)
    expect(page.locator("#flags-more")).to_have_count(0)

    open_changes(page)  # the whole log holds more than one answer's 500 config versions
    rows = page.locator("table.changes tbody tr")
    expect(rows).to_have_count(500)
    expect(page.locator("#changes-searched")).to_contain_text("older ones not searched yet")
    page.locator("#changes-older").click()
    expect(rows).to_have_count(1000)
    page.get_by_label("Flag", exact=True).fill("paged-0000")  # created before the newest 1,000
    page.get_by_label("Flag", exact=True).press("Enter")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Create")

    # 100 edits make 101 revisions, one more than the history shows at once.
    page.evaluate(
        """async () => {
            const session = await (await fetch('/ui/api/session')).json();
            for (let version = 1; version <= 100; version++) {
                const r = await fetch('/ui/api/flags/paged-0001', {method: 'PUT',
                    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf},
                    body: JSON.stringify({environment: 'local', expectedVersion: version,
                        flag: {variants: {on: true}, defaultVariant: 'on',
                               description: `edit ${version}`}})});
                if (!r.ok) throw new Error(await r.text());
            }
        }"""
    )
    assert console.flag("paged-0001")["version"] == "101"
    open_flag(page, console, "paged-0001")
    history = page.locator("table.history tbody tr")
    expect(history).to_have_count(100)
    page.locator("#history-older").click()
    expect(history).to_have_count(101)
    expect(page.locator('table.history tr[data-version="1"]')).to_contain_text("Create")
    expect(page.locator("#history-older")).to_have_count(0)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server in the open local profile (`make run`): no authentication, sessions open by
    themselves."""
    server = ServerProcess(
        tmp_path_factory.mktemp("open"), "--env", "local", "--store", "memory",
        env={"VEXIL_HEARTBEAT_SECONDS": "2"},
    )  # fmt: skip
    with server:
        yield server


def test_the_open_profile_opens_a_new_session_when_the_old_one_ended(page: Page, open_server) -> None:
    """README: the local profile is open, a session opens by itself; one that ends (its hour, a
    restart; here it is closed) must not leave the pages silently empty or no longer live."""

    def create(key: str) -> None:
        done = subprocess.run(
            [VEXIL, "flags", "create", key, "--default", "on", "--target", open_server.target],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    create("open-first")
    page.goto(f"http://127.0.0.1:{open_server.http_port}/ui/")
    expect(page.locator('tr[data-key="open-first"]')).to_be_visible()

    def end_the_session() -> None:
        closed = page.evaluate(
            """async () => {
                const session = await (await fetch('/ui/api/session')).json();
                const headers = {'X-CSRF-Token': session.csrf};
                return (await fetch('/ui/api/session', {method: 'DELETE', headers})).status;
            }"""
        )
        assert closed == 200

    end_the_session()  # its event stream is refused from the next heartbeat on
    create("open-second")  # while the page has no session: it appears once the page has one again
    expect(page.locator('tr[data-key="open-second"]')).to_be_visible()
    end_the_session()  # and the next request is refused
    page.get_by_role("link", name="Changes").click()
    expect(page.locator("table.changes tbody tr")).to_have_count(2)  # the two creations
    page.get_by_role("link", name="Flags").click()
    expect(page.locator('tr[data-key="open-first"]')).to_be_visible()


def test_a_kill_between_loading_and_saving_an_edit_is_no_conflict(page: Page, console: Console) -> None:
    """A kill changes the flag's version but not its definition: the admin's own kill must not
    turn the next save into a conflict; a change to the definition still does (README)."""
    make_flag(console, "kill-then-edit")
    sign_in(page, console)
    open_flag(page, console, "kill-then-edit")
    page.locator("#flag-kill").click()
    page.locator("#kill-reason").fill("incident 7")
    page.locator("#kill-confirm").click()
    expect(page.locator("#flag-state")).to_have_text("Killed")
    expect(page.locator("#flag-version")).to_have_text("version 2")
    page.locator("#edit-description").fill("killed for incident 7")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flag-version")).to_have_text("version 3")
    expect(page.locator("#conflict")).to_be_hidden()
    stored = console.flag("kill-then-edit")
    assert (stored["version"], stored["state"], stored["description"]) == (
        "3",
        "DISABLED",
        "killed for incident 7",
    )

    console.cli("flags", "kill", "kill-then-edit", "--revive", "--reason", "over")  # elsewhere: v4
    expect(page.locator("#flag-state")).to_have_text("Enabled")
    console.cli("flags", "update", "kill-then-edit", "--default", "on")  # the definition: v5
    expect(page.locator("#flag-version")).to_have_text("version 5")
    page.locator("#edit-description").fill("my edit")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#conflict")).to_be_visible()
    assert console.flag("kill-then-edit")["description"] == "killed for incident 7"


def test_try_it_shows_values_exactly_as_the_server_answers_them(page: Page, console: Console) -> None:
    """A value no double holds is shown as stored (and as OFREP answers it), not rounded."""
    definition = '{"variants": {"big": 9007199254740993, "small": 1}, "defaultVariant": "big"}'
    sign_in(page, console)
    create_in_page(page, console, "exact-try", definition)
    assert ofrep(console, "exact-try")["value"] == 9007199254740993
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#try-current .value")).to_have_text("9007199254740993")
    expect(page.locator("#try-draft .value")).to_have_text("9007199254740993")
    page.locator("#definition").fill(definition.replace("9007199254740993", "9007199254740995"))
    page.get_by_role("button", name="Evaluate").click()  # the draft's value, as written too
    expect(page.locator("#try-draft .value")).to_have_text("9007199254740995")
    expect(page.locator("#try-current .value")).to_have_text("9007199254740993")


def test_a_jwt_without_a_known_role_signs_in_with_no_role_and_may_do_nothing(
    page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """As the API: authenticated, and every page refused for having no role, said in words."""
    tmp = tmp_path_factory.mktemp("jwt")
    (tmp / "secret").write_text("s" * 48)
    server = ServerProcess(
        tmp, "--env", "local", "--store", "memory", "--auth-mode", "required",
        "--jwt-secret-file", str(tmp / "secret"), "--jwt-issuer", "iss", "--jwt-audience", "vexil",
    )  # fmt: skip
    now = int(time.time())
    claims = {"sub": "bob", "iss": "iss", "aud": "vexil", "iat": now, "exp": now + 600, "role": "superuser"}
    token = jwt.encode({**claims, "environments": "*"}, "s" * 48, algorithm="HS256")
    with server:
        page.goto(f"http://127.0.0.1:{server.http_port}/ui/")
        page.get_by_label("API key or JWT").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who")).to_have_text("jwt:bob (no role)")
        expect(page.locator("main")).to_contain_text("these credentials have no role")
