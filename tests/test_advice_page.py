"""The advice page over real HTTP, as a phone's browser, a link preview and curl meet it.

The bot runs as in ``make run`` (demo mode, its own server on a free port); the clinic makes
advice through the API, and these tests fetch ``advice_url`` with a plain HTTP client: what a
caller reads (Nynorsk, 113 first, both numbers as ``tel:`` links), the headers, that GETs change
nothing, that the Telegram link still binds afterwards, "Jeg blir verre" and deletion as form
POSTs (and the forms refused when they come from elsewhere), the language switch, the 404 and
410 pages, and the throttle on guessed links.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import update

from bot.advicepage import client_key, tel_links
from bot.app import RunningBot
from bot.config import Settings
from bot.models import Dispatch, utcnow
from tests.conftest import Api, People, table_rows

NUMBERS_NN = (
    'Hastar det: ring legevakta på <a class="tel" href="tel:116117">116&nbsp;117</a>. '
    'Ved fare for liv: ring <a class="tel" href="tel:113">113</a>.'
)
NUMBERS_NB = (
    'Haster det: ring legevakten på <a class="tel" href="tel:116117">116&nbsp;117</a>. '
    'Ved fare for liv: ring <a class="tel" href="tel:113">113</a>.'
)
FEVER_NN = {
    "topic": "fever-child",
    "locale": "nn",
    "note": "Mål temperaturen igjen klokka 22.",
    "risk_groups": ["infant-under-3-months"],
    "checkin_hours": 6,
}


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return settings.model_copy(update=dict(getattr(request, "param", {})))


def with_settings(**update: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [update], indirect=True, ids=["settings"])


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies and follows no redirect by itself, like curl."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def fetch(
    client: aiohttp.ClientSession, url: str, method: str = "GET", **options: Any
) -> tuple[int, dict[str, str], str]:
    options.setdefault("allow_redirects", False)
    async with client.request(method, url, **options) as response:
        return response.status, dict(response.headers), await response.text()


def form_of(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form that posts to ``action``."""
    match = re.search(
        rf'<form method="post" action="([^"]*/{action})"[^>]*>(.*?)</form>', page, re.S
    )
    assert match, f"no {action} form on the page"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', match.group(2)))


def text_of(page: str) -> str:
    """What a person reads: the page without tags, spaces collapsed."""
    body = re.sub(r"</?(a|em|strong)\b[^>]*>", "", page.split("<body>", 1)[1])  # inline
    return " ".join(re.sub(r"<[^>]+>", " ", body).replace("&nbsp;", " ").split())


def dispatch_state(bot: RunningBot, dispatch_id: str) -> dict[str, Any]:
    [row] = [r for r in table_rows(bot_url(bot), "dispatch") if r["id"] == dispatch_id]
    return row


def bot_url(bot: RunningBot) -> str:
    return bot.rt.settings.database_url or ""


async def page_state(api: Api, dispatch_id: str) -> dict[str, Any]:
    status, seen = await api.get(f"/api/v1/dispatches/{dispatch_id}")
    assert status == 200, seen
    return seen


# --- reading -------------------------------------------------------------------------------


async def test_the_sms_link_opens_the_advice_in_nynorsk_naming_113_and_116117(
    api: Api, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)

    status, headers, page = await fetch(browser, created["advice_url"])

    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<html lang="nn">' in page
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Robots-Tag"] == "noindex, nofollow"
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "form-action 'self'" in csp and "base-uri 'none'" in csp
    assert "frame-ancestors 'self'" in csp  # the demo's own page may frame it; see below
    assert "script" not in csp and "<script" not in page  # no JavaScript at all
    # Only this server's own stylesheets; nothing from anywhere else.
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)">', page) == [
        "/r/advice.css",
        "/r/" + created["advice_url"].rsplit("/", 1)[1] + "/seen.css",
    ]
    assert not re.search(r'(src|href)="(https?:)?//(?!t\.me/)', page)

    read = text_of(page)
    # The title, and at once the 113 line; then the tiers; the nurse's note; both numbers.
    assert read.index("Feber hos barn") < read.index("Ved fare for liv: ring 113.")
    assert (
        '<p class="call113">Ved fare for liv: ring <a class="tel" href="tel:113">113</a>.</p>'
        in (page)
    )
    assert (
        read.index("Ring 113 no viss")
        < read.index("Ring legevakta på 116 117 no viss")
        < read.index("Kontakt lege i dag eller neste yrkedag viss")
        < read.index("Dette kan du gjere sjølv")
    )
    assert "Barn under 3 månader: Barnet har 38 °C eller meir" in read
    assert "Frå sjukepleiaren du snakka med Mål temperaturen igjen klokka 22." in read
    assert NUMBERS_NN in page
    assert '<button type="submit">Barnet blir verre</button>' in page
    # Landmarks and headings for a screen reader.
    for landmark in ('<header class="top">', '<main id="main"', "<nav aria-label=", "<footer"):
        assert landmark in page
    assert page.count("<h1") == 1 and page.count("<h2") >= 6
    # The page says how long it stays open, and what Telegram adds.
    assert "Denne sida er open til" in read and "72 timar etter samtalen" in read
    assert "I Telegram spør vi deg 6 timar etter samtalen korleis det går" in read
    assert "Du treng ikkje Telegram: råda kan lesast her utan." in read
    assert f'href="{created["deep_link"]}"' in page
    assert "Råd frå Testlegevakt" in read


async def test_the_stylesheet_is_served_and_print_friendly(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    status, headers, css = await fetch(browser, (bot.web_url or "") + "r/advice.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert "@media print" in css and "url(" not in css  # nothing fetched from elsewhere


async def test_two_gets_change_nothing_and_the_telegram_link_still_binds(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession, people: People
) -> None:
    created = await api.dispatch(**FEVER_NN)
    before = dispatch_state(bot, created["id"])

    for method in ("GET", "GET", "HEAD"):
        status, _headers, _page = await fetch(browser, created["advice_url"], method)
        assert status == 200
    # A link preview (a bot reading the HTML for its title) and the worse and delete pages'
    # GETs change nothing either.
    await fetch(
        browser, created["advice_url"], headers={"User-Agent": "TelegramBot (like TwitterBot)"}
    )
    await fetch(browser, created["advice_url"] + "/worse")
    await fetch(browser, created["advice_url"] + "/delete")

    assert dispatch_state(bot, created["id"]) == before
    seen = await page_state(api, created["id"])
    assert seen["link_opened"] is False and seen["worse_pressed"] is False

    kari = await people("Kari", language_code="nn")
    [advice] = await kari.says("/start " + created["deep_link"].split("start=")[1])
    assert advice.text.startswith("Feber hos barn\nVed fare for liv: ring 113.")
    after = dispatch_state(bot, created["id"])
    assert after["person_id"] is not None and after["opened_at"] is not None
    # The page keeps working for everyone else at home.
    status, _headers, page = await fetch(browser, created["advice_url"])
    assert status == 200 and "Råda er alt opna i ein Telegram-chat." in text_of(page)


async def test_opened_is_recorded_when_a_browser_fetches_the_pages_stylesheet(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)
    beacon = created["advice_url"] + "/seen.css"

    # Someone typing the address (a navigation, not a stylesheet) does not count.
    status, _h, _b = await fetch(browser, beacon, headers={"Sec-Fetch-Dest": "document"})
    assert status == 200 and dispatch_state(bot, created["id"])["page_opened_at"] is None

    status, headers, body = await fetch(browser, beacon, headers={"Sec-Fetch-Dest": "style"})
    assert status == 200 and body == "" and headers["Content-Type"].startswith("text/css")
    first = dispatch_state(bot, created["id"])["page_opened_at"]
    assert first is not None
    await fetch(browser, beacon, headers={"Sec-Fetch-Dest": "style"})
    assert dispatch_state(bot, created["id"])["page_opened_at"] == first  # the first time stays

    seen = await page_state(api, created["id"])
    assert seen["link_opened"] is True
    assert seen["page_opened_at"] is not None and seen["telegram_opened_at"] is None
    assert seen["opened_at"] == seen["page_opened_at"]


# --- "Jeg blir verre" ----------------------------------------------------------------------


async def test_worse_on_the_page_shows_what_to_do_now_and_is_recorded(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)
    _status, _headers, page = await fetch(browser, created["advice_url"])
    form = form_of(page, "worse")
    assert form["lang"] == "nn"

    status, headers, _body = await fetch(
        browser, created["advice_url"] + "/worse", "POST", data=form
    )
    assert status == 303
    assert headers["Location"].endswith("/worse?lang=nn")
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    status, _headers, answer = await fetch(browser, bot_origin(bot) + headers["Location"])
    assert status == 200

    read = text_of(answer)
    assert (
        read.index("Dette gjer du no")
        < read.index("Ring 113 no viss du ser noko av dette:")
        < read.index("Ring legevakta på 116 117 no viss du ser noko av dette:")
    )
    assert "Barn under 3 månader: Barnet har 38 °C eller meir" in read
    assert "Ingen av desse, men blir det verre? Ring legevakta på 116 117 no." in read
    assert "Sei at du har fått skriftlege råd om: Feber hos barn." in read
    assert "Feberen har vart i meir enn 3 døgn" not in read  # "soon" is not for now
    assert NUMBERS_NN in answer

    row = dispatch_state(bot, created["id"])
    assert row["worse_count"] == 1 and row["worse_at"] is not None
    assert row["page_opened_at"] is not None  # pressing it means the page was seen
    seen = await page_state(api, created["id"])
    assert seen["worse_pressed"] is True and seen["worse_count"] == 1
    # Reloading the answer shows it again and counts nothing more.
    await fetch(browser, bot_origin(bot) + headers["Location"])
    assert dispatch_state(bot, created["id"])["worse_count"] == 1


def bot_origin(bot: RunningBot) -> str:
    return (bot.web_url or "").rstrip("/")


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("no form token", {"drop": "form"}),
        ("another dispatch's token", {"other": True}),
        ("another site", {"headers": {"Sec-Fetch-Site": "cross-site"}}),
        ("another origin", {"headers": {"Origin": "https://evil.example"}}),
    ],
)
async def test_a_form_from_elsewhere_is_refused_and_changes_nothing(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession, why: str, change: dict[str, Any]
) -> None:
    created = await api.dispatch(**FEVER_NN)
    _s, _h, page = await fetch(browser, created["advice_url"])
    form = form_of(page, "worse")
    if change.get("drop"):
        del form[change["drop"]]
    if change.get("other"):
        other = await api.dispatch(**FEVER_NN)
        _s, _h, other_page = await fetch(browser, other["advice_url"])
        form["form"] = form_of(other_page, "worse")["form"]
    headers = change.get("headers", {})

    for action in ("worse", "delete"):
        status, _h, answer = await fetch(
            browser, f"{created['advice_url']}/{action}", "POST", data=form, headers=headers
        )
        assert status == 403, why
        read = text_of(answer)
        assert "Skjemaet kom ikkje frå sida med råda dine." in read
        assert NUMBERS_NN in answer
        if action == "worse":  # whoever is getting worse is told to call now, all the same
            assert "Blir du verre: ring legevakta på 116 117 no." in read

    row = dispatch_state(bot, created["id"])
    assert row["worse_count"] == 0 and row["page_opened_at"] is None


async def test_the_pages_own_form_with_origin_null_is_taken(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    """With Referrer-Policy no-referrer a browser posts the page's own form with Origin: null
    (and Sec-Fetch-Site: same-origin); that is the page itself, so it counts."""
    created = await api.dispatch(**FEVER_NN)
    _s, _h, page = await fetch(browser, created["advice_url"])
    status, _h, _b = await fetch(
        browser,
        created["advice_url"] + "/worse",
        "POST",
        data=form_of(page, "worse"),
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert status == 303
    assert dispatch_state(bot, created["id"])["worse_count"] == 1


# --- the language switch ---------------------------------------------------------------------


async def test_the_language_switch_shows_the_same_advice_in_bokmal(
    api: Api, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)
    _s, _h, page = await fetch(browser, created["advice_url"])
    switch = dict(re.findall(r'<a href="([^"]+)" lang="(nb|nn)"', page))
    nb_link = next(href for href, code in switch.items() if code == "nb")
    assert 'aria-current="page">Nynorsk</a>' in page

    status, headers, bokmal = await fetch(
        browser, created["advice_url"].rsplit("/r/", 1)[0] + nb_link
    )

    assert status == 200 and headers["Content-Language"] == "nb"
    assert '<html lang="nb">' in bokmal and 'aria-current="page">Bokmål</a>' in bokmal
    read = text_of(bokmal)
    assert "Ring 113 nå hvis" in read and "Ring legevakten på 116 117 nå hvis" in read
    assert "Fra sykepleieren du snakket med Mål temperaturen igjen klokka 22." in read
    assert '<button type="submit">Barnet blir verre</button>' in bokmal
    assert form_of(bokmal, "worse")["lang"] == "nb"
    assert NUMBERS_NB in bokmal


# --- deleting --------------------------------------------------------------------------------


async def test_delete_asks_once_then_deletes_and_the_link_answers_410(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession, people: People
) -> None:
    created = await api.dispatch(**FEVER_NN, phone="+4791234567", send_sms=True)
    _s, _h, page = await fetch(browser, created["advice_url"])
    assert '<a href="/r/' in page and "/delete?lang=nn" in page

    status, _h, question = await fetch(browser, created["advice_url"] + "/delete?lang=nn")
    assert status == 200
    assert "Slette dataa dine?" in text_of(question) and NUMBERS_NN in question
    assert dispatch_state(bot, created["id"])  # asking deletes nothing

    status, _h, done = await fetch(
        browser, created["advice_url"] + "/delete", "POST", data=form_of(question, "delete")
    )
    assert status == 200
    assert "Dataa dine er sletta" in text_of(done) and NUMBERS_NN in done
    assert [r for r in table_rows(bot_url(bot), "dispatch") if r["id"] == created["id"]] == []
    assert [
        r for r in table_rows(bot_url(bot), "outbox") if r["dispatch_id"] == created["id"]
    ] == []

    status, headers, gone = await fetch(browser, created["advice_url"])
    assert status == 410 and headers["Cache-Control"] == "no-store"
    assert "Desse råda er sletta, så dei kan ikkje visast lenger." in text_of(gone)
    assert NUMBERS_NN in gone
    # Pressing "delete" again (a reload) says it is gone, as asked.
    status, _h, again = await fetch(
        browser, created["advice_url"] + "/delete", "POST", data=form_of(question, "delete")
    )
    assert status == 200 and "Dataa dine er sletta" in text_of(again)
    # Telegram no longer knows the link either.
    kari = await people("Kari", language_code="nn")
    [refused] = await kari.says("/start " + created["deep_link"].split("start=")[1])
    assert "116 117" in refused.text and "113" in refused.text
    status, _seen = await api.get(f"/api/v1/dispatches/{created['id']}")
    assert status == 404


async def test_deleting_ones_data_in_telegram_makes_the_page_answer_410(
    api: Api, browser: aiohttp.ClientSession, people: People
) -> None:
    created = await api.dispatch(**FEVER_NN)
    kari = await people("Kari", language_code="nn")
    await kari.says("/start " + created["deep_link"].split("start=")[1])
    await kari.presses("Slett dataa mine")
    await kari.presses("Ja, slett")

    status, _h, gone = await fetch(browser, created["advice_url"])
    assert status == 410 and NUMBERS_NN in gone


# --- links that do not work ------------------------------------------------------------------


async def test_an_unknown_or_mangled_link_gets_a_404_page_naming_both_numbers(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)
    base = bot_origin(bot)
    for path in ("/r/" + "A" * 23, created["advice_url"][len(base) : -1], "/r/x/y/z"):
        status, headers, page = await fetch(
            browser, base + path, headers={"Accept-Language": "nn-NO,nn;q=0.9"}
        )
        assert status == 404, path
        assert headers["Cache-Control"] == "no-store" and headers["X-Robots-Tag"].startswith(
            "noindex"
        )
        assert NUMBERS_NN in page, path


async def test_an_expired_link_gets_a_410_page_naming_both_numbers(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)
    async with bot.rt.sessions() as session:
        await session.exec(
            update(Dispatch)
            .where(Dispatch.id == created["id"])  # type: ignore[arg-type]
            .values(expires_at=utcnow() - dt.timedelta(minutes=1))
        )
        await session.commit()

    status, _h, page = await fetch(browser, created["advice_url"])
    assert status == 410
    read = text_of(page)
    assert "Råda kunne lesast i 72 timar etter samtalen, og den tida er over." in read
    assert NUMBERS_NN in page
    status, _h, page = await fetch(browser, created["advice_url"] + "/worse", "POST", data={})
    assert status == 410 and "Blir du verre: ring legevakta på 116 117 no." in text_of(page)


@with_settings(page_link_attempts=3, forwarded_hops=1)
async def test_guessing_links_is_throttled_per_client_address(
    api: Api, bot: RunningBot, browser: aiohttp.ClientSession
) -> None:
    created = await api.dispatch(**FEVER_NN)
    guesser = {"X-Forwarded-For": "203.0.113.7", "Accept-Language": "nn"}
    for attempt in range(3):
        status, _h, _p = await fetch(
            browser, f"{bot_origin(bot)}/r/{'G' * 22}{attempt}", headers=guesser
        )
        assert status == 404
    # Paused: not even a real link is looked up from that address, and it is told why.
    status, _h, page = await fetch(browser, created["advice_url"], headers=guesser)
    assert status == 429
    assert "For mange lenkjer som ikkje verkar" in text_of(page) and NUMBERS_NN in page
    # Everyone else is served as before.
    status, _h, _p = await fetch(
        browser, created["advice_url"], headers={"X-Forwarded-For": "198.51.100.20"}
    )
    assert status == 200


def test_the_client_address_for_the_throttle() -> None:
    def key(headers: dict[str, str], hops: int, peer: str = "10.0.0.5") -> str:
        request = make_mocked_request("GET", "/r/x", headers=headers)
        return client_key(request.clone(remote=peer), hops)

    assert key({}, 0) == "10.0.0.5"
    assert key({"X-Forwarded-For": "203.0.113.7"}, 0) == "10.0.0.5"  # not trusted
    assert key({"X-Forwarded-For": "1.2.3.4, 203.0.113.7"}, 1) == "203.0.113.7"
    assert key({"X-Forwarded-For": "1.2.3.4, 203.0.113.7"}, 2) == "1.2.3.4"
    # One phone or home holds a whole IPv6 /64.
    assert key({}, 0, "2001:db8:1:2:aaaa::1") == key({}, 0, "2001:db8:1:2:bbbb::9")
    assert key({}, 0, "2001:db8:1:2::1") == "2001:db8:1:2::/64"


def test_numbers_become_tel_links_and_text_is_escaped() -> None:
    assert str(tel_links("Ring 113 <nå> eller 116 117.")) == (
        'Ring <a class="tel" href="tel:113">113</a> &lt;nå&gt; eller '
        '<a class="tel" href="tel:116117">116&nbsp;117</a>.'
    )
    assert str(tel_links("1130 og 2113")) == "1130 og 2113"


def test_only_the_demo_may_frame_the_page() -> None:
    from bot.advicepage import security_headers

    production, demo = security_headers(demo=False), security_headers(demo=True)
    assert "frame-ancestors 'none'" in production["Content-Security-Policy"]
    assert production["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'self'" in demo["Content-Security-Policy"]
    assert demo["X-Frame-Options"] == "SAMEORIGIN"


async def test_a_deleted_pages_hash_is_forgotten_with_the_dispatchs_retention(rt: Any) -> None:
    from bot.services import dispatches
    from bot.services.dispatches import Page

    rt.bot_username = "sikkerhetsnett_local_bot"
    made = await dispatches.create(rt, dispatches.validate(FEVER_NN, rt))
    token = made.advice_url.rsplit("/", 1)[1]
    assert (await dispatches.find_page(rt, token)).state is Page.SHOWN

    assert await dispatches.delete_dispatch(rt, made.dispatch.id, via="web")
    gone = await dispatches.find_page(rt, token)
    assert gone.state is Page.GONE and gone.locale == "nn"
    assert not await dispatches.delete_dispatch(rt, made.dispatch.id, via="web")

    days = rt.settings.retention_days
    await dispatches.purge_old(rt, now=made.dispatch.created_at + dt.timedelta(days=days - 1))
    assert (await dispatches.find_page(rt, token)).state is Page.GONE
    await dispatches.purge_old(rt, now=made.dispatch.created_at + dt.timedelta(days=days + 1))
    assert (await dispatches.find_page(rt, token)).state is Page.UNKNOWN
