"""The demo page in a real browser: Debian's Chromium, headless, driven through Selenium and
Debian's chromedriver (nothing downloaded), at a phone's 360×740.

The real bot runs in demo mode as in ``make run``; the page plays the people. Paths: the nurse
makes advice → the caller opens the link, reads it, presses "Jeg blir verre" and answers the
check-in; a leader opens a demo invite, enrols, links her "Ledergruppe" and answers this week's
question (posted to the group too); the admin sees
every text in Bokmål and Nynorsk. Along the way: no request leaves 127.0.0.1, nothing overflows
360 px, text contrast is at least 4.5:1, and the page can be worked by keyboard. Screenshots go
to ``tests/e2e/artifacts/`` (not committed).

Without Chromium, chromedriver or Selenium the tests are skipped, unless ``CI`` is set: then they
fail (``make system-deps`` installs the browser).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.app import RunningBot

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).parent / "artifacts"
WIDTH, HEIGHT = 360, 740
WAIT = 20.0
# Known to work on this machine's closed network (see the environment notes): no background
# connections, no component downloads, no QUIC.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--lang=nb-NO",
    f"--window-size={WIDTH},{HEIGHT}",
]


@pytest.fixture(autouse=True)
def _browser_installed() -> None:
    """Skip (or, with CI set, fail) before the bot starts when there is no browser."""
    need_browser()


def need_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        message = "the browser tests need " + ", ".join(missing) + " (make system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# --- the browser, in a thread (Selenium blocks; the bot runs on the test's event loop) --------


class Page:
    """One headless Chromium at 360×740 with helpers that wait for what a person would see."""

    def __init__(self, base_url: str, name: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url
        self.name = name
        self.shots: list[Path] = []
        self.requests: list[str] = []
        self.console: list[dict[str, Any]] = []
        self.profile = Path(tempfile.mkdtemp(prefix="sikkerhetsnett-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(
            service=Service(executable_path=CHROMEDRIVER), options=options
        )
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": True},
        )

    def close(self) -> None:
        try:
            self.collect_logs()
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- finding and waiting ------------------------------------------------------------------

    def wait(self, what: str, condition: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                result = condition()
            except Exception as exc:  # stale elements while the page re-renders
                result, last_error = None, exc
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}" + (f": {last_error}" if last_error else "")
        )

    def css(self, selector: str, root: Any = None) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list((root or self.driver).find_elements(By.CSS_SELECTOR, selector))

    def one(self, selector: str) -> Any:
        return self.wait(selector, lambda: next(iter(self.css(selector)), None))

    def visible(self, element_id: str) -> Any:
        return self.wait(
            f"#{element_id} to show",
            lambda: (e := self.driver.find_element("id", element_id)).is_displayed() and e,
        )

    def bot_message(self, phone: str, starts: str) -> Any:
        """The newest message from the bot in that chat whose text starts with ``starts``."""

        def find() -> Any:
            for message in reversed(self.css(f"#{phone} .msg.bot")):
                if message.text.strip().startswith(starts):
                    return message
            return None

        return self.wait(f"a message starting {starts!r} in #{phone}", find)

    def button(self, root: Any, label: str) -> Any:
        def find() -> Any:
            for candidate in reversed(self.css("button", root)):
                if candidate.text.strip() == label and candidate.is_enabled():
                    return candidate
            return None

        return self.wait(f"a button {label!r}", find)

    def press(self, element: Any) -> None:
        """Activate a control with the keyboard, as someone without a mouse would."""
        from selenium.webdriver.common.keys import Keys

        element.send_keys(Keys.ENTER)

    # -- evidence -----------------------------------------------------------------------------

    def shot(self, label: str, element: Any = None, message: Any = None) -> Path:
        """What a phone shows now, scrolled to ``element`` (and the chat to ``message``), saved
        under artifacts/."""
        if element is not None:
            self.driver.execute_script(
                "arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -8);", element
            )
        if message is not None:
            self.driver.execute_script(
                "const log = arguments[0].closest('.messages');"
                "log.scrollTop += arguments[0].getBoundingClientRect().top"
                " - log.getBoundingClientRect().top - 8;",
                message,
            )
        time.sleep(0.1)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{len(self.shots) + 1:02d}-{label}.png"
        self.driver.save_screenshot(str(path))
        self.shots.append(path)
        return path

    def collect_logs(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        self.console.extend(self.driver.get_log("browser"))

    def check_layout(self, persona: str) -> None:
        """No sideways scrolling at 360 px, and every visible text at 4.5:1 contrast or more."""
        width = self.driver.execute_script("return document.documentElement.scrollWidth")
        inner = self.driver.execute_script("return window.innerWidth")
        assert inner == WIDTH
        assert width <= WIDTH, f"{persona}: the page is {width} px wide at {WIDTH} px"
        low = self.driver.execute_script(CONTRAST_JS)
        assert not low, f"{persona}: text below 4.5:1 contrast: {low[:5]}"


# Contrast of every visible element that holds text, against the first opaque background behind
# it (WCAG 2 relative luminance). Large text (24 px, or 18.66 px bold) needs 3:1.
CONTRAST_JS = """
const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
  const p = m[1].split(',').map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
const lum = ([r, g, b]) => { const f = (v) => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
const background = (el) => { for (let e = el; e; e = e.parentElement) {
  const c = parse(getComputedStyle(e).backgroundColor); if (c && c[3] > 0.5) return c; }
  return [255, 255, 255, 1]; };
const low = [];
for (const el of document.querySelectorAll('body *')) {
  if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
  if (el.closest('.spoiler, [hidden]')) continue;
  const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent)
    .join('').trim();
  if (!text) continue;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.display === 'none') continue;
  const fg = parse(style.color), bg = background(el);
  const a = lum(fg), b = lum(bg);
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  if (ratio < need) {
    low.push(`${el.tagName}.${el.className} "${text.slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
}
return low;
"""


@contextmanager
def browser(base_url: str, name: str, refused: str | None = None) -> Iterator[Page]:
    """A page; ``refused`` is the one status the scenario expects the API to answer (Chrome
    reports it on the console), any other console error fails the test."""
    page = Page(base_url, name)
    try:
        yield page
    except BaseException:
        try:
            page.shot("failure")
            (ARTIFACTS / f"{name}-failure.html").write_text(page.driver.page_source, "utf-8")
        except Exception:
            pass
        raise
    finally:
        page.close()
        # Anything over the network (the browser's own chrome:// pages are not) must be ours.
        outside = [
            url
            for url in page.requests
            if re.match(r"(https?|wss?|ftp):", url, re.I) and not url.startswith(base_url)
        ]
        assert any(url.startswith(base_url) for url in page.requests), "no request was seen"
        assert not outside, f"requests that left {base_url}: {outside}"
        errors = [
            e
            for e in page.console
            if e.get("level") == "SEVERE"
            and not (refused and f"responded with a status of {refused}" in e.get("message", ""))
        ]
        assert not errors, f"errors in the browser console: {errors}"


def open_page(page: Page, fragment: str = "") -> None:
    page.driver.get(page.base_url + fragment)
    page.wait("the page to be ready", lambda: page.one("body[data-ready='true']"))
    notice = page.one("#notice")
    assert "Dette er ikke Telegram." in notice.text


# --- the scenarios -------------------------------------------------------------------------


def nurse_caller_worse(base_url: str) -> list[Path]:
    from selenium.webdriver.support.ui import Select

    with browser(base_url, "caller") as page:
        open_page(page)
        page.check_layout("nurse")
        page.shot("nurse-form")
        Select(page.one("#topic")).select_by_value("fever-child")
        page.one("input[name=locale][value=nb]").click()
        page.one("#note").send_keys("Mål temperaturen igjen klokka 22.")
        page.one("input[name=risk][value=infant-under-3-months]").click()
        Select(page.one("#checkin")).select_by_value("0")  # the check-in at once
        page.press(page.one("#create"))

        result = page.visible("dispatch-result")
        link = page.one("#deep-link").text
        assert re.fullmatch(r"https://t\.me/\w+\?start=a_[A-Za-z0-9_-]+", link), link
        sms = page.one("#sms-text").text
        page_link = page.one("#advice-url").text
        assert sms.startswith("Råd fra Demo legevakt etter samtalen: " + page_link), sms
        assert link not in sms  # the SMS carries the page; the page offers Telegram
        page.check_layout("nurse")
        page.shot("nurse-link-and-sms", result)

        page.press(page.one("#open-as-caller"))
        page.visible("caller")
        advice = page.bot_message("caller-phone", "Feber hos barn")
        headings = [b.text for b in page.css("#caller-phone .msg.bot strong")]
        for heading in (
            "Ved fare for liv: ring 113.",
            "Ring 113 nå hvis",
            "Dette kan du gjøre selv",
            "Barn under 3 måneder",
        ):
            assert heading in headings, headings
        assert "Mål temperaturen igjen klokka 22." in advice.text
        labels = [b.text for b in page.css("button", advice)]
        assert labels == ["Barnet blir verre", "Vis på Nynorsk", "Slett dataene mine"]
        page.check_layout("caller")
        page.shot("caller-advice", page.one("#caller-phone"), advice)

        page.press(page.button(advice, "Barnet blir verre"))
        worse = page.bot_message("caller-phone", "Ring 113 nå hvis du ser noe av dette:")
        assert "116 117" in worse.text
        page.shot("caller-worse", page.one("#caller-phone"), worse)

        page.wait(
            "the demo's note on the check-in",
            lambda: any(
                "oppfølgingsspørsmålet kommer med en gang" in m.text
                for m in page.css("#caller-phone .msg.system")
            ),
        )
        checkin = page.bot_message("caller-phone", "Hvordan går det nå?")
        page.press(page.button(checkin, "Bedre"))
        page.bot_message("caller-phone", "Så bra. Takk for svaret")
        page.check_layout("caller")
        page.shot("caller-checkin", page.one("#caller-phone"))

        # Back at the nurse's desk: what the clinic's system was told, live from the feed.
        page.press(page.one("button[data-persona=nurse]"))
        told = page.wait(
            "the nurse's live view to show the check-in answer",
            lambda: next(
                (
                    item
                    for item in page.css("#live-list > li")
                    if "Svar på oppfølgingen" in item.text
                ),
                None,
            ),
        )
        lines = [line.text for line in page.css("li", told)]
        assert lines[0].startswith("Laget kl."), lines
        assert any(line.startswith("Åpnet i Telegram kl.") for line in lines), lines
        [worse] = page.css(".worse-line", told)
        assert re.fullmatch(r"⚠ Blir verre \(i Telegram\) kl\. \d\d:\d\d:\d\d\.", worse.text)
        assert lines[-1].endswith(": Bedre."), lines
        assert "worse" in (told.get_attribute("class") or "")
        page.check_layout("nurse")
        page.shot("nurse-live-view", told)
        return page.shots


def nurse_sees_refusals_in_norwegian(base_url: str) -> tuple[list[Path], str, str]:
    """The nurse types a fødselsnummer (with the en dash a phone puts in) in the note: the page
    says what is wrong, in Norwegian, beside the note and above the button."""
    from selenium.webdriver.support.ui import Select

    with browser(base_url, "nurse-errors", refused="422") as page:
        open_page(page)
        Select(page.one("#topic")).select_by_value("fever-child")
        page.one("#note").send_keys("Mor oppga 010190–00083. Mål temperaturen igjen i kveld.")
        page.press(page.one("#create"))

        note_error = page.wait("the note's error", lambda: page.one("#note-error").text or None)
        form_error = page.one("#form-error").text
        page.check_layout("nurse")
        page.shot("nurse-refused", page.one("#dispatch-form"))
        return page.shots, note_error, form_error


def leader_enrols(base_url: str) -> list[Path]:
    from selenium.webdriver.common.keys import Keys

    with browser(base_url, "leader") as page:
        open_page(page)
        page.press(page.one("button[data-persona=leader]"))
        page.visible("leader")
        page.wait(
            "focus on the leader's heading",
            lambda: page.driver.switch_to.active_element.get_attribute("id") == "leader-title",
        )
        page.wait("the roles", lambda: page.one("#role option[value=unit-leader]"))
        page.press(page.one("#make-invite"))
        page.visible("invite-result")
        assert "?start=i_" in page.one("#invite-link").text
        page.press(page.one("#open-invite"))

        phone = page.one("#leader-phone")
        page.bot_message("leader-phone", "Velkommen!")
        page.press(page.button(phone, "Bokmål"))
        page.bot_message("leader-phone", "Hvilken ukedag")
        page.press(page.button(phone, "Tirsdag"))
        page.bot_message("leader-phone", "Hvilket klokkeslett?")
        page.press(page.button(phone, "09:00"))
        page.bot_message("leader-phone", "Ferdig! Du får et spørsmål hver tirsdag kl. 09:00.")
        page.check_layout("leader")
        page.shot("leader-enrolled", phone)

        # Her leader group: the bot added with a group link, in a "Ledergruppe" chat.
        page.press(page.one("#link-group"))
        page.bot_message("group-phone", "Ferdig: gruppa er koblet til.")

        page.press(page.one("#send-now"))
        page.wait(
            "the send-now status",
            lambda: "Ukens spørsmål er sendt" in page.one("#leader-status").text,
        )
        page.bot_message("group-phone", "Ukens spørsmål til diskusjon")
        page.check_layout("leader")
        page.shot("leader-group", page.one("#group-phone"))
        question = page.wait(
            "this week's question",
            lambda: next(
                (
                    m
                    for m in reversed(page.css("#leader-phone .msg.bot"))
                    if [b.text for b in page.css("button", m)]
                    == ["Svar", "Hopp over", "Minn meg på i morgen", "Noe som gikk bra?"]
                ),
                None,
            ),
        )
        assert page.css("strong", question), "the question is shown in bold"
        page.shot("leader-question", phone, question)

        field = page.one("#leader-input")
        field.send_keys("Vi må lære mer av hendelsene." + Keys.ENTER)
        page.bot_message("leader-phone", "Takk, svaret ditt er lagret.")
        page.check_layout("leader")
        page.shot("leader-answered", phone)
        return page.shots


def admin_and_keyboard(base_url: str, topics: int, programmes: int) -> list[Path]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    with browser(base_url, "admin") as page:
        open_page(page)
        # Keyboard alone: Tab goes from the skip link through the personas into the form, and
        # the focused control is marked.
        seen = []
        for _ in range(12):
            ActionChains(page.driver).send_keys(Keys.TAB).perform()
            active = page.driver.switch_to.active_element
            seen.append(active.get_attribute("id") or active.get_attribute("data-persona"))
            outline = active.value_of_css_property("outline-style")
            assert outline not in ("", "none"), f"no focus mark on {seen[-1]}"
        assert seen[:5] == [None, "nurse", "caller", "leader", "admin"], seen
        assert "topic" in seen and "note" in seen, seen

        page.press(page.one("button[data-persona=admin]"))
        page.visible("admin")
        page.wait(
            "the content",
            lambda: len(page.css("#content details.item")) == topics + programmes,
        )
        summary = page.one("#content-summary").text
        assert summary.startswith("Innholdssjekken:"), summary
        first = page.css("#content details.item")[0]
        assert first.get_attribute("open") is not None
        columns = page.css(".lang", first)
        assert [c.get_attribute("lang") for c in columns][:2] == ["nb", "nn"]
        assert "Eg blir verre" in columns[1].text and "Jeg blir verre" in columns[0].text
        page.check_layout("admin")
        page.shot("admin-content", first)
        return page.shots


# --- the tests -----------------------------------------------------------------------------


def _url(bot: RunningBot) -> str:
    assert bot.web_url is not None
    return bot.web_url


async def test_nurse_then_caller_gets_worse(bot: RunningBot) -> None:
    shots = await asyncio.to_thread(nurse_caller_worse, _url(bot))
    assert all(path.stat().st_size > 1000 for path in shots)


async def test_the_nurse_is_told_what_is_wrong_in_norwegian(bot: RunningBot) -> None:
    shots, note_error, form_error = await asyncio.to_thread(
        nurse_sees_refusals_in_norwegian, _url(bot)
    )
    assert note_error.startswith("Notatet inneholder et fødselsnummer;")
    assert form_error.startswith("Ikke laget (422): rådet ble ikke laget – Notat: notatet")
    assert "the dispatch was not created" not in form_error and "note:" not in form_error
    assert all(path.stat().st_size > 1000 for path in shots)


async def test_leader_enrols_and_answers(bot: RunningBot) -> None:
    shots = await asyncio.to_thread(leader_enrols, _url(bot))
    assert all(path.stat().st_size > 1000 for path in shots)


async def test_admin_content_and_keyboard(bot: RunningBot) -> None:
    content = bot.rt.content
    shots = await asyncio.to_thread(
        admin_and_keyboard, _url(bot), len(content.advice), len(content.programmes)
    )
    assert all(path.stat().st_size > 1000 for path in shots)
