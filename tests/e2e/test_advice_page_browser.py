"""The advice page in a real browser at a phone's 360 px: Debian's Chromium, headless, through
Selenium (the setup of ``test_browser.py``), against the real bot in demo mode.

A caller opens the SMS's link, reads the advice (the browser's fetch of the page records
"opened"), presses "Barnet blir verre" with the keyboard, switches to Bokmål, and deletes the
data; at each step axe-core, run in the page, finds no serious or critical accessibility
violation (WCAG 2.1 A and AA rules), nothing overflows 360 or 320 px, or 180 px (360 px at
200 % zoom), text contrast is 4.5:1 or more, and no request leaves the bot's own server.
Screenshots go to ``tests/e2e/artifacts/``.

axe-core comes from ``make axe`` (the npm package at a pinned version, SHA-512 checked); without
it the tests are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bot.app import RunningBot
from bot.models import Dispatch
from tests.conftest import Api
from tests.e2e.test_browser import WIDTH, Page, browser, need_browser

VENDOR = Path(__file__).parent / "vendor"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(autouse=True)
def _browser_installed() -> None:
    """Skip (or, with CI set, fail) before the bot starts when there is no browser: as in
    ``test_browser.py``, whose autouse fixture does not reach this module."""
    need_browser()


def axe_source() -> str:
    found = sorted(VENDOR.glob("axe-core-*.min.js"))
    if not found:
        message = "the accessibility check needs axe-core: run `make axe`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found[-1].read_text("utf-8")


def axe_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.1 A/AA in the page as it is now (serious or critical)."""
    driver = page.driver
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then((r) => done(JSON.stringify(r.violations.map((v) => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3)})))))"
        ".catch((e) => done(JSON.stringify("
        "[{id: 'axe-error', impact: 'critical', nodes: [String(e)]}])));",
        AXE_TAGS,
    )
    found: list[dict[str, Any]] = json.loads(result)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def fits(page: Page, width: int) -> None:
    """At ``width`` CSS px nothing scrolls sideways."""
    page.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 740, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        scroll = page.driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width, f"the page is {scroll} px wide at {width} px"
    finally:
        page.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": 740, "deviceScaleFactor": 1, "mobile": True},
        )


def checked(page: Page, what: str, axe: str) -> None:
    """The page as it is now: no sideways scrolling, contrast, and axe-core's verdict."""
    page.check_layout(what)
    for width in (320, 180):  # the smallest phones; and 360 px at 200 % zoom
        fits(page, width)
    violations = axe_violations(page, axe)
    assert not violations, f"{what}: axe-core found {violations}"


def caller_reads_worse_switches_and_deletes(base_url: str, advice_url: str, axe: str) -> list[Path]:
    from selenium.webdriver.common.by import By

    with browser(base_url, "advice-page", refused="410") as page:
        driver = page.driver
        driver.get(advice_url)
        heading = page.one("h1")
        assert heading.text == "Feber hos barn"
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nn"
        call113 = page.one(".call113")
        assert call113.text == "Ved fare for liv: ring 113."
        assert page.one(".call113 a.tel").get_attribute("href") == "tel:113"
        footer = page.one("footer").text
        assert "116 117" in footer and "113" in footer
        checked(page, "advice", axe)
        page.shot("advice-top")
        page.shot("advice-tiers", page.one("section.part.urgent"))
        page.shot("advice-telegram", page.one("section.telegram"))

        # "Barnet blir verre", with the keyboard.
        page.press(page.one("form.worse button"))
        page.wait("what to do now", lambda: page.one("h1").text == "Dette gjer du no")
        body = page.one("main").text
        assert "Ring 113 no viss du ser noko av dette:" in body
        assert "Ring legevakta på 116 117 no viss du ser noko av dette:" in body
        assert driver.current_url.endswith("/worse?lang=nn")
        checked(page, "worse", axe)
        page.shot("worse")

        # Back, and the language switch.
        page.one("main a[href*='?lang=nn']").click()
        page.wait("the advice again", lambda: page.one("h1").text == "Feber hos barn")
        page.one("nav a[lang=nb]").click()
        page.wait(
            "Bokmål",
            lambda: driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nb",
        )
        assert page.one("form.worse button").text == "Barnet blir verre"
        assert "Ring 113 nå hvis" in page.one("main").text
        assert page.one("nav a[aria-current=page]").text == "Bokmål"
        checked(page, "advice-nb", axe)
        page.shot("advice-bokmal")

        # Delete, with one confirmation.
        page.one("section.about a[href*='/delete']").click()
        page.wait("the question", lambda: page.one("h1").text == "Slette dataene dine?")
        checked(page, "delete-question", axe)
        page.shot("delete-question")
        page.press(page.one("form.confirm button"))
        page.wait("the deletion", lambda: page.one("h1").text == "Dataene dine er slettet")
        assert "116 117" in page.one("footer").text
        checked(page, "deleted", axe)
        page.shot("deleted")

        driver.get(advice_url)  # the advice was in Nynorsk: so is the page saying it is gone
        page.wait("the 410 page", lambda: page.one("h1").text == "Råda kan ikkje visast lenger")
        checked(page, "gone", axe)
        page.shot("gone")
        return page.shots


def printable(base_url: str, advice_url: str) -> bool:
    """The print stylesheet leaves the advice and the numbers, not the buttons."""
    with browser(base_url, "advice-print") as page:
        page.driver.get(advice_url)
        page.one("h1")
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        hidden = page.driver.execute_script(
            "return ['form.worse', 'section.telegram', 'nav'].map("
            "(s) => getComputedStyle(document.querySelector(s)).display)"
        )
        shown = page.driver.execute_script(
            "return getComputedStyle(document.querySelector('section.part.emergency')).display"
        )
        return hidden == ["none", "none", "none"] and shown == "block"


def nurse_opens_the_page_as_the_caller(base_url: str, axe: str) -> list[Path]:
    """The demo: the nurse's result shows advice_url and the SMS; the caller opens the page in
    the phone-sized frame."""
    from selenium.webdriver.support.ui import Select

    from tests.e2e.test_browser import open_page

    with browser(base_url, "demo-page") as page:
        open_page(page)
        Select(page.one("#topic")).select_by_value("fever-child")
        page.one("input[name=locale][value=nn]").click()
        page.press(page.one("#create"))
        result = page.visible("dispatch-result")
        url = page.one("#advice-url").text
        assert re.fullmatch(re.escape(base_url) + r"r/[A-Za-z0-9_-]{23}", url), url
        sms = page.one("#sms-text").text
        assert sms.startswith("Råd frå Demo legevakt etter samtalen: " + url), sms
        assert sms.endswith("Ved fare for liv: ring 113.")
        page.shot("nurse-sms-and-page-link", result)

        page.press(page.one("#open-page-as-caller"))
        page.visible("caller-web")
        frame = page.one("#caller-page")
        page.driver.switch_to.frame(frame)
        page.wait("the advice in the frame", lambda: page.one("h1").text == "Feber hos barn")
        page.driver.switch_to.default_content()
        page.shot("caller-page-in-frame", page.one("#caller-web"))
        return page.shots


# --- the tests -----------------------------------------------------------------------------


async def opened(bot: RunningBot, dispatch_id: str) -> Any:
    async with bot.rt.sessions() as session:
        row = await session.get(Dispatch, dispatch_id)
        return None if row is None else row.page_opened_at


async def test_a_caller_reads_says_worse_switches_language_and_deletes(
    bot: RunningBot, api: Api
) -> None:
    axe = axe_source()
    created = await api.dispatch(
        topic="fever-child",
        locale="nn",
        note="Mål temperaturen igjen klokka 22.",
        risk_groups=["infant-under-3-months"],
        checkin_hours=6,
    )
    assert bot.web_url is not None
    shots = await asyncio.to_thread(
        caller_reads_worse_switches_and_deletes, bot.web_url, created["advice_url"], axe
    )
    assert all(path.stat().st_size > 1000 for path in shots)
    assert await opened(bot, created["id"]) is None  # deleted at the end
    status, _ = await api.get(f"/api/v1/dispatches/{created['id']}")
    assert status == 404


async def test_a_real_browser_showing_the_page_counts_as_opened(bot: RunningBot, api: Api) -> None:
    created = await api.dispatch(topic="fever-child", locale="nn")
    assert bot.web_url is not None
    assert await opened(bot, created["id"]) is None
    assert await asyncio.to_thread(printable, bot.web_url, created["advice_url"])
    assert await opened(bot, created["id"]) is not None


async def test_the_demo_shows_advice_url_and_opens_the_page_as_the_caller(
    bot: RunningBot,
) -> None:
    axe = axe_source()
    assert bot.web_url is not None
    shots = await asyncio.to_thread(nurse_opens_the_page_as_the_caller, bot.web_url, axe)
    assert all(path.stat().st_size > 1000 for path in shots)
