"""The demo page's routes on the bot's own web server; added only in demo mode.

``/``                                  the page (``static/index.html``)
``/demo/static/…``                     its CSS and JavaScript
``GET  /demo/api/key``                 an API key for the page (made once per process) and the
                                       bot's username; the page then uses the real ``/api/v1``
``POST /demo/api/dispatches/{id}/checkin``  ``{"minutes": N}``: the check-in comes in N minutes
                                       (the API offers hours; a demo cannot wait that long)
``GET  /demo/api/roles``               leader roles, for the invite
``POST /demo/api/invite``              ``{"role": …}``: an invite link for "Demo HF"
``POST /demo/api/leader/{user}/send-now``  this week's question to that leader now (and to
                                       the demo's leader groups, if their week is not posted)
``POST /demo/api/group-link``          ``{"role": …}``: a group link for "Demo HF", as
                                       ``group link`` makes one (the page adds the bot with it)
``GET  /demo/api/content``             every topic and question in nb and nn, with the findings
``/demo/user/{user}/…``                the local Bot API's user side, forwarded (one origin)

Everything here answers only requests from this machine (loopback peer, a loopback ``Host``,
and no foreign ``Origin`` on writes), on top of the demo binding to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlmodel import col, select, update

from bot.content.check import check_content
from bot.models import (
    CheckinStatus,
    Dispatch,
    Leader,
    LeaderStatus,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    Person,
    utcnow,
)
from bot.runtime import Runtime
from bot.services import apikeys, groups, invites, leaders, weekly
from devkit.demo.content_view import content_view

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(files("devkit.demo").joinpath("static")))
DEMO_ORG = "Demo HF"
DEMO_CLINIC = "Demo legevakt"  # the demo page's API key belongs to it
DEFAULT_ROLE = "unit-leader"
CHECKIN_MINUTES_MAX = 24 * 60
PROXY_TIMEOUT = aiohttp.ClientTimeout(total=75, connect=5)
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

# Everything the page loads comes from this server: the browser is told so as well.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The user-side routes the page may use (not /user/updates or /control/…).
# A group's chat id is negative (reading the "Ledergruppe" chat); a person adds the bot to a
# group and writes in it through /user/<person>/groups/….
USER_ROUTE = (
    r"/user/{user_id:-?[1-9][0-9]{0,14}}/"
    r"{tail:messages|wait|callbacks|callback_answers|commands|edits|files/[0-9]{1,12}"
    r"|groups|groups/-[1-9][0-9]{0,14}/messages}"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class DemoState:
    rt: Runtime
    user_side: str  #: the local Bot API's root, e.g. http://127.0.0.1:8081
    key: str | None = None
    key_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: aiohttp.ClientSession | None = None
    content: tuple[str, dict[str, Any]] | None = None  #: (digest, view), the check is slow


STATE = web.AppKey("demo_state", DemoState)


def add_demo_routes(app: web.Application, rt: Runtime) -> None:
    """Add the page and the demo endpoints to the bot's web app; nothing with a real token."""
    if not rt.settings.demo:
        return
    state = DemoState(rt, user_side=f"http://127.0.0.1:{rt.settings.local_bot_api_port}")

    async def page(request: web.Request) -> web.StreamResponse:
        refused = _refusal(request)
        if refused is not None:
            return refused
        return _index()

    app.router.add_get("/", page)
    demo = web.Application(middlewares=[_local_only], client_max_size=64 * 1024)
    demo[STATE] = state
    demo.router.add_get("/api/key", get_key)
    demo.router.add_post("/api/dispatches/{dispatch_id:[0-9a-f]{32}}/checkin", move_checkin)
    demo.router.add_get("/api/roles", list_roles)
    demo.router.add_post("/api/invite", make_invite)
    demo.router.add_post("/api/leader/{user_id:[1-9][0-9]{0,14}}/send-now", send_now)
    demo.router.add_post("/api/group-link", make_group_link)
    demo.router.add_get("/api/content", get_content)
    demo.router.add_get(USER_ROUTE, user_side)
    demo.router.add_post(USER_ROUTE, user_side)
    demo.router.add_static("/static/", STATIC_DIR, append_version=False)
    demo.on_shutdown.append(_close_client)
    app.add_subapp("/demo/", demo)


# --- who may ask ---------------------------------------------------------------------------


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refusal(request: web.Request) -> web.Response | None:
    """A 403 unless the request comes from this machine and names it (no DNS rebinding)."""
    try:
        host = request.url.host or ""
    except ValueError:  # a Host header that is no host
        host = ""
    if not _is_loopback(request.remote) or host.lower() not in LOOPBACK_NAMES:
        return _error(403, "forbidden", "the demo page answers only on this machine (127.0.0.1)")
    origin = request.headers.get("Origin")
    if request.method not in ("GET", "HEAD") and origin and origin != f"http://{request.host}":
        return _error(403, "forbidden", "requests from other sites are refused")
    return None


@web.middleware
async def _local_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    refused = _refusal(request)
    if refused is not None:
        return refused
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": "unsupported_media_type", "message": "send a JSON body"}),
            content_type="application/json",
        )
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "bad_json", "message": "send a JSON object"}),
            content_type="application/json",
        )
    return body


def _index() -> web.Response:
    page = (STATIC_DIR / "index.html").read_text("utf-8")
    return web.Response(
        text=page,
        content_type="text/html",
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


# --- the nurse -----------------------------------------------------------------------------


async def get_key(request: web.Request) -> web.Response:
    """The page's API key, made on first use and kept for this process."""
    state = request.app[STATE]
    async with state.key_lock:
        if state.key is None:
            _row, state.key = await apikeys.create(state.rt.sessions, "Lokal demoside", DEMO_CLINIC)
            log.info("demo: API key for the demo page made")
    return web.json_response({"key": state.key, "bot_username": state.rt.bot_username})


async def move_checkin(request: web.Request) -> web.Response:
    """Bring an opened dispatch's check-in to now + N minutes (outbox row and dispatch)."""
    state = request.app[STATE]
    dispatch_id = request.match_info["dispatch_id"]
    body = await _json_object(request)
    minutes = body.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        return _error(422, "invalid", "minutes must be a number", fields={"minutes": "a number"})
    if not 0 <= minutes <= CHECKIN_MINUTES_MAX:
        return _error(
            422,
            "invalid",
            f"minutes must be from 0 to {CHECKIN_MINUTES_MAX}",
            fields={"minutes": "out of range"},
        )
    now = utcnow()
    due = now + dt.timedelta(minutes=minutes)
    expires = due + dt.timedelta(hours=state.rt.settings.checkin_window_hours)
    async with state.rt.sessions() as session:
        dispatch = await session.get(Dispatch, dispatch_id)
        if dispatch is None:
            return _error(404, "not_found", "no such dispatch")
        moved: Any = await session.exec(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.dispatch_id) == dispatch_id,
                col(OutboxMessage.kind) == MessageKind.CHECKIN,
                col(OutboxMessage.status) == OutboxStatus.PENDING,
            )
            .values(due_at=due, expires_at=expires)
        )
        if moved.rowcount != 1:
            await session.rollback()
            return _error(
                409,
                "not_scheduled",
                "there is no check-in waiting: open the link first, and choose a check-in",
            )
        await session.exec(
            update(Dispatch)
            .where(
                col(Dispatch.id) == dispatch_id,
                col(Dispatch.checkin_status) == CheckinStatus.SCHEDULED,
            )
            .values(checkin_due_at=due)
        )
        await session.commit()
    log.info("demo: check-in of dispatch %s moved to %s minutes from now", dispatch_id, minutes)
    if state.rt.sender is not None:
        state.rt.sender.wake()
    return web.json_response({"id": dispatch_id, "checkin_due_at": _iso(due), "minutes": minutes})


# --- the leader ----------------------------------------------------------------------------


async def list_roles(request: web.Request) -> web.Response:
    rt = request.app[STATE].rt
    roles = [
        {"id": role.id, "title": role.title, "programme": programme.id}
        for role_id, (programme, role) in sorted(rt.content.roles.items())
    ]
    default = DEFAULT_ROLE if DEFAULT_ROLE in rt.content.roles else None
    if default is None and roles:
        default = roles[0]["id"]
    return web.json_response({"roles": roles, "default": default})


async def make_invite(request: web.Request) -> web.Response:
    """An invite for leaders of "Demo HF" (ten uses, a week), as `invite create` makes one."""
    rt = request.app[STATE].rt
    body = await _json_object(request)
    role = body.get("role") or (DEFAULT_ROLE if DEFAULT_ROLE in rt.content.roles else None)
    if role is None and rt.content.roles:
        role = sorted(rt.content.roles)[0]
    try:
        created = await invites.create(rt, DEMO_ORG, str(role), uses=10, expires="7d")
    except invites.InvalidInvite as exc:
        return _error(422, "invalid", "the invite was not made", fields=exc.fields)
    return web.json_response(created.as_json(), status=201)


async def send_now(request: web.Request) -> web.Response:
    """Make this leader's question due now and run the weekly tick's own function."""
    rt = request.app[STATE].rt
    user_id = int(request.match_info["user_id"])
    now = utcnow()
    async with rt.sessions() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_user_id == user_id))
        ).one_or_none()
        leader = None
        if person is not None:
            leader = (
                await session.exec(select(Leader).where(Leader.person_id == person.id))
            ).one_or_none()
        if leader is None:
            return _error(404, "not_a_leader", "open an invite and choose day and time first")
        if leader.status != LeaderStatus.ACTIVE:
            return _error(
                409, "not_active", f"the leader is {leader.status}: finish the choices first"
            )
        await session.exec(
            update(Leader)
            .where(
                col(Leader.id) == leader.id,
                col(Leader.status) == LeaderStatus.ACTIVE,
            )
            .values(next_due_at=now)
        )
        await session.commit()
    await weekly.send_due_prompts(rt, now)
    prompt = await leaders.latest_prompt(rt, leader)
    sent = prompt is not None and prompt.created_at >= now
    # The leader's groups get theirs too (once a week, as the tick would post it).
    group_sent = [
        await groups.post_now(rt, group, now=now) for group in await groups.groups_for(rt, leader)
    ]
    if rt.sender is not None:
        rt.sender.wake()
    return web.json_response(
        {
            "sent": sent,
            "week": prompt.week if prompt is not None else None,
            "groups": len(group_sent),
            "groups_sent": sum(group_sent),
            "message": "sent"
            if sent
            else "this week's question was sent before: one question a week",
        }
    )


async def make_group_link(request: web.Request) -> web.Response:
    """A group link for "Demo HF" (one role's group), as `group link` makes one: the page then
    adds the bot to its "Ledergruppe" with it. Tuesdays at 09:00, like the demo's leader."""
    rt = request.app[STATE].rt
    body = await _json_object(request)
    role = body.get("role") or (DEFAULT_ROLE if DEFAULT_ROLE in rt.content.roles else None)
    try:
        created = await groups.create_link(
            rt, DEMO_ORG, role_id=str(role), weekday=1, minute_of_day=9 * 60, expires="1d"
        )
    except groups.InvalidGroupLink as exc:
        return _error(422, "invalid", "the group link was not made", fields=exc.fields)
    return web.json_response(created.as_json(), status=201)


# --- the admin -----------------------------------------------------------------------------


async def get_content(request: web.Request) -> web.Response:
    """Every topic and question in both languages with the check's findings (cached per
    content version; the check takes a moment)."""
    state = request.app[STATE]
    rt = state.rt
    digest = rt.content.digest
    if state.content is None or state.content[0] != digest:
        settings = rt.settings
        report = await asyncio.to_thread(
            check_content, settings.content_dir, settings.locales_dir, lix_limit=settings.lix_limit
        )
        state.content = (digest, content_view(rt, report))
    return web.json_response(state.content[1])


# --- the people's side: the local Bot API, forwarded -----------------------------------------


async def user_side(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state.client is None or state.client.closed:
        state.client = aiohttp.ClientSession(timeout=PROXY_TIMEOUT)
    url = f"{state.user_side}/user/{request.match_info['user_id']}/{request.match_info['tail']}"
    body = await request.read() if request.method == "POST" else None
    headers = {"Content-Type": "application/json"} if body else {}
    try:
        async with state.client.request(
            request.method, url, params=request.query, data=body, headers=headers
        ) as upstream:
            data = await upstream.read()
            extra = {}
            if "Content-Disposition" in upstream.headers:
                extra["Content-Disposition"] = upstream.headers["Content-Disposition"]
            return web.Response(
                body=data,
                status=upstream.status,
                content_type=upstream.content_type,
                headers=extra,
            )
    except (aiohttp.ClientError, TimeoutError):
        return _error(502, "bad_gateway", "the local Bot API does not answer")


async def _close_client(app: web.Application) -> None:
    state = app[STATE]
    if state.client is not None:
        await state.client.close()


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
