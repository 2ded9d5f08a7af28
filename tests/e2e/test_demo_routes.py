"""The demo page's server side over real HTTP, without a browser: the page and its assets, the
demo-only endpoints, the forwarded user side, and that none of it exists with a real token or
answers anyone but this machine."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot.app import RunningBot, build_runtime
from bot.config import Settings
from bot.models import Dispatch, OutboxMessage, utcnow
from bot.web import build_web_app
from devkit.localapi import LocalGroup, LocalUser

STATIC = Path(__file__).resolve().parents[2] / "devkit" / "devkit" / "demo" / "static"


@pytest.fixture
async def http(bot: RunningBot) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    assert bot.web_url is not None
    async with aiohttp.ClientSession() as session:
        yield session, bot.web_url.rstrip("/")


@pytest.fixture
async def demo_user(bot: RunningBot) -> AsyncIterator[LocalUser]:
    """A person talking to the bot through the page's own route, /demo/user/… (the proxy)."""
    assert bot.web_url is not None
    async with LocalUser(bot.web_url + "demo", user_id=7123456, first_name="Lise") as user:
        yield user


def test_assets_use_relative_urls_only() -> None:
    """Nothing in the page can make the browser ask another host: no absolute URLs at all."""
    page = (STATIC / "index.html").read_text("utf-8")
    for match in re.finditer(r'\b(src|href|action|srcset|poster|data)="([^"]*)"', page):
        value = match.group(2)
        assert value == "data:," or not re.match(r"^([a-z][a-z0-9+.-]*:|//)", value, re.I), value
    css = (STATIC / "demo.css").read_text("utf-8")
    assert "@import" not in css and "url(" not in css
    script = (STATIC / "demo.js").read_text("utf-8")
    assert "http://" not in script and "https://" not in script
    assert not re.search(r"""(fetch|open)\(\s*["'`]/""", script)  # relative to the page, too
    assert "import(" not in script and "WebSocket" not in script


async def test_page_and_assets(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    async with session.get(base + "/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert "Dette er ikke Telegram." in page
    for asset, kind in (("demo.css", "text/css"), ("demo.js", "javascript")):
        async with session.get(f"{base}/demo/static/{asset}") as resp:
            assert resp.status == 200 and kind in resp.content_type
    async with session.get(base + "/demo/static/../routes.py") as resp:
        assert resp.status in (403, 404)


async def test_only_this_machine_is_answered(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    port = base.rsplit(":", 1)[1]
    # DNS rebinding: a foreign name for 127.0.0.1 is refused.
    async with session.get(base + "/demo/api/key", headers={"Host": f"evil.example:{port}"}) as r:
        assert r.status == 403
    async with session.get(base + "/", headers={"Host": f"evil.example:{port}"}) as r:
        assert r.status == 403
    # A write from another site's page is refused; from the page itself it is not.
    body = {"role": "unit-leader"}
    foreign = {"Origin": "http://evil.example"}
    async with session.post(base + "/demo/api/invite", json=body, headers=foreign) as r:
        assert r.status == 403
    async with session.post(base + "/demo/api/invite", json=body, headers={"Origin": base}) as r:
        assert r.status == 201
    # Only the user routes the page needs are forwarded: not the fault controls.
    async with session.post(base + "/demo/control/outage", json={"seconds": 5}) as r:
        assert r.status == 404
    async with session.post(base + "/demo/user/updates", json={}) as r:
        assert r.status == 404


async def test_no_demo_routes_with_a_token(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token="123456789:" + "A" * 35,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        var_dir=tmp_path / "var",
        secret_key="test-secret-" + "x" * 32,
    )
    assert not settings.demo
    rt = build_runtime(settings)
    try:
        app = build_web_app(rt)
        paths = {resource.canonical for resource in app.router.resources()}
        assert "/" not in paths
        assert not any(path.startswith("/demo") for path in paths)
    finally:
        await rt.engine.dispose()


async def test_key_works_with_the_real_api(
    bot: RunningBot, http: tuple[aiohttp.ClientSession, str]
) -> None:
    session, base = http
    async with session.get(base + "/demo/api/key") as resp:
        first = await resp.json()
    async with session.get(base + "/demo/api/key") as resp:
        assert (await resp.json())["key"] == first["key"]  # one key per process
    assert first["bot_username"] == bot.rt.bot_username
    auth = {"Authorization": f"Bearer {first['key']}"}
    async with session.get(base + "/api/v1/topics", headers=auth) as resp:
        assert resp.status == 200
        assert any(t["id"] == "fever-child" for t in (await resp.json())["topics"])


async def test_checkin_moves_to_minutes_after_opening(
    bot: RunningBot, http: tuple[aiohttp.ClientSession, str], demo_user: LocalUser
) -> None:
    session, base = http
    async with session.get(base + "/demo/api/key") as resp:
        auth = {"Authorization": f"Bearer {(await resp.json())['key']}"}
    body = {"topic": "fever-child", "locale": "nb", "checkin_hours": 6}
    async with session.post(base + "/api/v1/dispatches", json=body, headers=auth) as resp:
        assert resp.status == 201
        created = await resp.json()
    move = f"{base}/demo/api/dispatches/{created['id']}/checkin"
    async with session.post(move, json={"minutes": 0}) as resp:
        assert resp.status == 409  # not opened yet: nothing is scheduled
    payload = created["deep_link"].split("?start=")[1]
    await demo_user.says(f"/start {payload}")
    async with session.post(move, json={"minutes": -1}) as resp:
        assert resp.status == 422
    async with session.post(move, json={"minutes": 0}) as resp:
        assert resp.status == 200, await resp.text()
    [checkin] = await demo_user.replies(timeout=10)
    assert checkin.text.startswith("Hvordan går det nå?")
    async with bot.rt.sessions() as db:
        dispatch = await db.get(Dispatch, created["id"])
        assert dispatch is not None and dispatch.checkin_due_at is not None
        assert dispatch.checkin_due_at <= utcnow()
        row = (
            await db.exec(
                select(OutboxMessage).where(OutboxMessage.dedupe_key == f"checkin:{created['id']}")
            )
        ).one()
        assert row.status == "sent"


async def test_invite_enrol_and_send_now(
    http: tuple[aiohttp.ClientSession, str], demo_user: LocalUser
) -> None:
    session, base = http
    send_now = f"{base}/demo/api/leader/{demo_user.user_id}/send-now"
    async with session.post(send_now, json={}) as resp:
        assert resp.status == 404  # not a leader yet
    async with session.get(base + "/demo/api/roles") as resp:
        roles = await resp.json()
    assert roles["default"] == "unit-leader"
    async with session.post(base + "/demo/api/invite", json={"role": "nobody"}) as resp:
        assert resp.status == 422
    async with session.post(base + "/demo/api/invite", json={"role": "unit-leader"}) as resp:
        invite = await resp.json()
    assert invite["organisation"] == "Demo HF"
    await demo_user.says(f"/start {invite['deep_link'].split('?start=')[1]}")
    async with session.post(send_now, json={}) as resp:
        assert resp.status == 409  # still choosing language, day and time
    await demo_user.presses("Bokmål")
    await demo_user.presses("Tirsdag")
    [done] = [m for m in await demo_user.presses("09:00") if not m.edited]
    assert done.text.startswith("Ferdig! Du får et spørsmål hver tirsdag kl. 09:00.")

    async with session.post(send_now, json={}) as resp:
        sent = await resp.json()
    assert sent["sent"] is True and sent["week"]
    [question] = await demo_user.replies(timeout=10)
    assert question.button_texts == [
        "Svar",
        "Hopp over",
        "Minn meg på i morgen",
        "Noe som gikk bra?",
    ]
    async with session.post(send_now, json={}) as resp:
        again = await resp.json()
    assert again["sent"] is False  # one question a week
    [saved] = await demo_user.says("Vi må lære mer av hendelsene.")
    assert saved.text.startswith("Takk, svaret ditt er lagret.")


async def test_content_in_both_languages_with_findings(
    bot: RunningBot, http: tuple[aiohttp.ClientSession, str]
) -> None:
    session, base = http
    async with session.get(base + "/demo/api/content") as resp:
        assert resp.status == 200
        view = await resp.json()
    assert [t["id"] for t in view["topics"]] == sorted(bot.rt.content.advice)
    fever = next(t for t in view["topics"] if t["id"] == "fever-child")
    assert fever["file"] == "content/advice/fever-child.yaml"
    assert "<b>Ring 113 nå hvis</b>" in "".join(fever["texts"]["nb"]["messages"])
    assert "<b>Ring 113 no viss</b>" in "".join(fever["texts"]["nn"]["messages"])
    assert fever["texts"]["nn"]["buttons"][0] == "Barnet blir verre"
    assert fever["scope"]["audience"] == "children" and fever["sources"]
    # The topic's 6 + 4 + 1 signs, and the 3 urgent ones of its two risk groups (all shown).
    assert fever["tiers"] == {"emergency": 6, "urgent": 7, "soon": 1}
    assert isinstance(fever["findings"], list)
    questions = [q for p in view["programmes"] for r in p["roles"] for q in r["questions"]]
    total = sum(
        len(p.questions_for(r.id)) for p in bot.rt.content.programmes.values() for r in p.roles
    )
    assert len(questions) == total > 0
    assert all(q["texts"]["nb"] and q["texts"]["nn"] for q in questions)


def test_findings_sit_next_to_their_item(settings: Settings) -> None:
    """Each finding of the content check is shown with the topic or question it is about."""
    from bot.content.check import Report
    from bot.content.loader import ContentError
    from devkit.demo.content_view import content_view

    rt = build_runtime(settings)
    programme = sorted(rt.content.programmes.values(), key=lambda p: p.id)[0]
    theme = programme.themes[0]
    question = theme.questions[0]
    topic_file = rt.content.source("advice", "fever-child").display
    programme_file = rt.content.source("reflection", programme.id).display
    report = Report(
        findings=[
            ContentError(topic_file, 12, "worsening_signs[x].sign", "is vague", "warning"),
            ContentError(
                programme_file,
                30,
                f"themes[{theme.id}].questions[{question.id}].text",
                "has no Nynorsk translation",
            ),
            ContentError(programme_file, 2, "title", "has no Nynorsk translation"),
            ContentError("locales/nn/LC_MESSAGES/messages.po", 1, "", "the catalog is missing"),
        ],
        files=8,
    )
    view = content_view(rt, report)
    assert (view["errors"], view["warnings"]) == (3, 1)
    fever = next(t for t in view["topics"] if t["id"] == "fever-child")
    assert [f["where"] for f in fever["findings"]] == [f"{topic_file}:12"]
    assert all(not t["findings"] for t in view["topics"] if t["id"] != "fever-child")
    shown = next(p for p in view["programmes"] if p["id"] == programme.id)
    assert [f["field"] for f in shown["findings"]] == ["title"]
    with_finding = [q["id"] for r in shown["roles"] for q in r["questions"] if q["findings"]]
    assert with_finding == [question.id]
    assert [f["file"] for f in view["general"]] == ["locales/nn/LC_MESSAGES/messages.po"]


async def test_the_leaders_ledergruppe_is_linked_and_gets_the_weeks_question(
    http: tuple[aiohttp.ClientSession, str], demo_user: LocalUser, bot: RunningBot
) -> None:
    session, base = http
    async with session.post(base + "/demo/api/invite", json={"role": "unit-leader"}) as resp:
        invite = await resp.json()
    await demo_user.says(f"/start {invite['deep_link'].split('?start=')[1]}")
    await demo_user.presses("Bokmål")
    await demo_user.presses("Tirsdag")
    await demo_user.presses("09:00")

    async with session.post(base + "/demo/api/group-link", json={"role": "nobody"}) as resp:
        assert resp.status == 422
    async with session.post(base + "/demo/api/group-link", json={"role": "unit-leader"}) as resp:
        assert resp.status == 201
        link = await resp.json()
    assert link["organisation"] == "Demo HF" and "?startgroup=g_" in link["deep_link"]
    # The page adds the bot to its group through the forwarded user side, as Lise.
    assert bot.web_url is not None
    async with LocalGroup(
        bot.web_url + "demo",
        -4000123456,
        "Ledergruppe",
        demo_user.user_id,
        member_name="Lise",
    ) as group:
        [linked] = await group.adds_bot(link["deep_link"].split("?startgroup=")[1])
        assert linked.text.startswith("Ferdig: gruppa er koblet til.")
        async with session.post(f"{base}/demo/api/leader/{demo_user.user_id}/send-now") as resp:
            sent = await resp.json()
        assert (sent["sent"], sent["groups"], sent["groups_sent"]) == (True, 1, 1)
        [question] = await group.replies(timeout=10)
        assert question.text.startswith("Ukens spørsmål til diskusjon")
        await demo_user.replies(timeout=10)
        async with session.post(f"{base}/demo/api/leader/{demo_user.user_id}/send-now") as resp:
            again = await resp.json()
        assert (again["sent"], again["groups_sent"]) == (False, 0)  # once a week, both
        await group.says("Godt spørsmål!", expect_silence=True)
