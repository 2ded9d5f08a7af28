"""The advice page: a dispatch's advice as a plain web page at ``PUBLIC_URL/r/<token>``, the link
in the SMS, for everyone with a phone and a browser (no app, no login, no JavaScript).

``/r/advice.css``            the one stylesheet (static; print rules included)
``GET  /r/<token>``          the advice (``?lang=nb|nn`` switches the language), or a 404/410 page
``GET  /r/<token>/seen.css`` an empty stylesheet: fetching it records "opened" (below)
``POST /r/<token>/worse``    "Jeg blir verre": recorded on the dispatch, then (303) …
``GET  /r/<token>/worse``    … what to do now, by tier (only shows; records nothing)
``GET  /r/<token>/delete``   "Slett dataene mine?" (asks once; changes nothing)
``POST /r/<token>/delete``   deletes the dispatch, then a page with 116 117 and 113

Safe to open and to preview: a GET only reads (``dispatches.find_page``). "Opened" is recorded
when a browser fetches the page's second, empty stylesheet (``seen.css``): messaging apps that
fetch a link to draw its preview read the HTML's title and never its stylesheets, so a preview
does not count. Every answer carries ``Cache-Control: no-store``, ``Referrer-Policy:
no-referrer``, ``X-Robots-Tag: noindex``, a strict CSP (nothing from anywhere else; no scripts
at all), ``X-Content-Type-Options: nosniff`` and no framing (the demo page may frame it).

Forms are CSRF-safe without cookies (the page sets none): each carries ``dispatches.form_token``
(an HMAC bound to the dispatch's page); a POST is refused when a browser says it came from
another site (``Sec-Fetch-Site``) or from another origin (``Origin``, compared with PUBLIC_URL's,
or in the demo with the request's own host). Unknown tokens count against the client's address
(``LinkThrottle``); after ``PAGE_LINK_ATTEMPTS`` in the window it gets a 429 page without a look-up.

Every page, errors included, names 116 117 and 113 (as ``tel:`` links). The routes only parse,
call services and render; the advice itself comes from ``bot.render`` as it does for Telegram.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from bot import render, urgency
from bot.i18n import LANGUAGE_NAMES, LOCALES, Locale, format_when
from bot.runtime import Runtime
from bot.services import dispatches
from bot.services.dispatches import Page
from bot.throttle import LinkThrottle

if TYPE_CHECKING:
    from bot.models import Dispatch

log = logging.getLogger(__name__)

PREFIX = dispatches.PAGE_PATH  # "/r/"
TOKEN = r"[A-Za-z0-9_-]{1,64}"
TOKEN_LENGTH = 23  # privacy.new_token
TEMPLATES = Path(str(files("bot").joinpath("templates")))
STYLESHEET = TEMPLATES / "advice.css"

PAGE_RUNTIME = web.AppKey("page_runtime", Runtime)
THROTTLE = web.AppKey("page_throttle", LinkThrottle[str])
ENVIRONMENT = web.AppKey("page_templates", Environment)
FORM_LANGUAGE = web.RequestKey("form_language", str)  # a posted form's ``lang``

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _(message: str) -> str:
    """Mark a string for extraction; it is translated when the page is rendered."""
    return message


# --- headers -------------------------------------------------------------------------------


def security_headers(demo: bool) -> dict[str, str]:
    """What every answer under /r/ carries. Only the demo's own page may frame it."""
    ancestors = "'self'" if demo else "'none'"
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN" if demo else "DENY",
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            f"base-uri 'none'; frame-ancestors {ancestors}"
        ),
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    }


@web.middleware
async def page_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The headers on every answer, and a page with the numbers for a wrong path or method."""
    rt = request.app[PAGE_RUNTIME]
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _message(
            request,
            _language(request),
            status=exc.status,
            heading=_("This page does not exist"),
            lines=[_("Open the link straight from the SMS, without changing it.")],
        )
    response.headers.update(security_headers(rt.settings.demo))
    return response


# --- who is asking ---------------------------------------------------------------------------


def client_key(request: web.Request, hops: int) -> str:
    """The client's address for the throttle: the peer, or with ``hops`` proxies in front the
    address that many entries from the right of X-Forwarded-For. An IPv6 address counts by its
    /64 (one home or phone gets a whole /64 to pick from)."""
    address = request.remote or "unknown"
    if hops:
        chain = [
            part.strip()
            for header in request.headers.getall("X-Forwarded-For", [])
            for part in header.split(",")
            if part.strip()
        ]
        if len(chain) >= hops:
            address = chain[-hops]
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def _language(
    request: web.Request, found: Dispatch | dispatches.PageResult | None = None
) -> Locale:
    """``?lang=`` (or a form's ``lang``), else the language the nurse chose, else the browser's."""
    asked = request.query.get("lang") or request.get(FORM_LANGUAGE)
    if asked in LOCALES:
        return "nn" if asked == "nn" else "nb"
    chosen = found.locale if found is not None else None
    if chosen in LOCALES:
        return "nn" if chosen == "nn" else "nb"
    from bot.api import language_of

    spoken = language_of(request.headers.get("Accept-Language"))
    if spoken in LOCALES:
        return "nn" if spoken == "nn" else "nb"
    return request.app[PAGE_RUNTIME].settings.default_locale


def _origin_refused(request: web.Request, rt: Runtime) -> str | None:
    """Why a POST is refused as coming from elsewhere, or None (the browsers' own word)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return "sec-fetch-site"
    origin = request.headers.get("Origin")
    # "null": a page with Referrer-Policy no-referrer posts its own forms with Origin: null.
    if origin is not None and origin != "null":
        expected = rt.public_url if not rt.settings.demo else f"{request.scheme}://{request.host}"
        if origin.rstrip("/").lower() != expected.rstrip("/").lower():
            parts = urlsplit(origin)
            if not (rt.settings.demo and parts.hostname in ("127.0.0.1", "localhost", "::1")):
                return "origin"
    return None


# --- rendering -----------------------------------------------------------------------------

_TEL = (
    (re.compile(r"(?<![\d])116 117(?![\d])"), "116117", "116&nbsp;117"),
    (re.compile(r"(?<![\d])113(?![\d])"), "113", "113"),
)


def tel_links(text: str) -> Markup:
    """The text, escaped, with 113 and 116 117 as ``tel:`` links (a tap calls)."""
    out = str(escape(text))
    for pattern, number, shown in _TEL:
        out = pattern.sub(f'<a class="tel" href="tel:{number}">{shown}</a>', out)
    return Markup(out)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tel"] = tel_links
    return env


def _render(
    request: web.Request, template: str, locale: Locale, status: int = 200, **values: Any
) -> web.Response:
    rt = request.app[PAGE_RUNTIME]
    gettext = rt.catalogs.gettext(locale)
    page = (
        request.app[ENVIRONMENT]
        .get_template(template)
        .render(
            _=gettext,
            lang=locale,
            numbers=urgency.numbers_line(gettext),
            languages=LANGUAGE_NAMES,
            **values,
        )
    )
    return web.Response(
        text=page,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Language": locale},
    )


def _message(
    request: web.Request,
    locale: Locale,
    *,
    status: int,
    heading: str,
    lines: list[str],
    worse: bool = False,
    **values: Any,
) -> web.Response:
    """A short page that says what happened, in the caller's language, and the numbers."""
    gettext = request.app[PAGE_RUNTIME].catalogs.gettext(locale)
    return _render(
        request,
        "message.html",
        locale,
        status=status,
        title=gettext(heading),
        heading=gettext(heading),
        lines=[gettext(line).format(**values) for line in lines],
        call_now=urgency.worse_numbers_line(gettext) if worse else None,
        from_line=gettext("Sikkerhetsnett"),
    )


def _not_found(request: web.Request, locale: Locale) -> web.Response:
    return _message(
        request,
        locale,
        status=404,
        heading=_("This link does not work"),
        lines=[
            _(
                "There is no advice at this address. The link may be incomplete: open it "
                "straight from the SMS, without changing it."
            )
        ],
    )


def _gone(
    request: web.Request, locale: Locale, state: Page, *, worse: bool = False
) -> web.Response:
    rt = request.app[PAGE_RUNTIME]
    if state is Page.EXPIRED:
        lines = [
            _(
                "This advice could be read for {hours} hours after your call, and that time "
                "is over."
            ),
            _("If you also opened it in Telegram, you can still read it there."),
        ]
    else:
        lines = [_("This advice has been deleted, so it cannot be shown any more.")]
    return _message(
        request,
        locale,
        status=410,
        heading=_("This advice can no longer be shown"),
        lines=lines,
        worse=worse,
        hours=rt.settings.link_ttl_hours,
    )


def _too_many(request: web.Request, locale: Locale) -> web.Response:
    rt = request.app[PAGE_RUNTIME]
    minutes = max(1, round(rt.settings.page_link_window_minutes))
    return _message(
        request,
        locale,
        status=429,
        heading=_("Too many links that do not work"),
        lines=[
            _(
                "Too many links that do not work have been opened from this network. Wait "
                "{minutes} minutes, then open the link straight from the SMS."
            )
        ],
        minutes=minutes,
    )


# --- the routes ----------------------------------------------------------------------------


async def _lookup(
    request: web.Request,
) -> tuple[dispatches.PageResult | None, web.Response | None]:
    """The page behind the URL's token, or the answer to give instead (404, 410, 429)."""
    rt = request.app[PAGE_RUNTIME]
    throttle = request.app[THROTTLE]
    who = client_key(request, rt.settings.forwarded_hops)
    if throttle.paused(who):
        return None, _too_many(request, _language(request))
    token = request.match_info["token"]
    found = (
        await dispatches.find_page(rt, token)
        if len(token) == TOKEN_LENGTH
        else dispatches.PageResult(Page.UNKNOWN)
    )
    if found.state is Page.UNKNOWN:
        if throttle.failed(who):
            log.warning("advice page: an address paused after %d unknown links", throttle.limit)
        return None, _not_found(request, _language(request))
    return found, None


async def advice(request: web.Request) -> web.Response:
    """The advice, as the nurse chose it, in the language asked for."""
    found, refused = await _lookup(request)
    if refused is not None:
        return refused
    assert found is not None
    if found.state is not Page.SHOWN:
        return _gone(request, _language(request, found), found.state)
    assert found.dispatch is not None
    return _advice_page(request, found)


def _advice_page(request: web.Request, found: dispatches.PageResult) -> web.Response:
    rt = request.app[PAGE_RUNTIME]
    dispatch = found.dispatch
    assert dispatch is not None
    locale = _language(request, dispatch)
    gettext = rt.catalogs.gettext(locale)
    topic = dispatches.advice_for(rt, dispatch, locale)
    if topic is None:  # the topic was removed from the content, and no copy was kept
        return _gone(request, locale, Page.GONE)
    tailoring = dispatches.tailoring_of(rt, dispatch)
    content = render.advice_content(
        topic,
        gettext,
        note=tailoring.note,
        risk_groups=tailoring.risk_groups,
        checkin_when=dispatches.checkin_when(rt, dispatch, locale),
    )
    token = request.match_info["token"]
    return _render(
        request,
        "advice.html",
        locale,
        title=content.title,
        from_line=_from_line(gettext, found.clinic),
        advice=content,
        base=f"{PREFIX}{token}",
        beacon=f"{PREFIX}{token}/seen.css",
        form=dispatches.form_token(rt, dispatch),
        worse_label=urgency.worse_button(gettext, topic.audience),
        deep_link=dispatches.telegram_link(rt, token),
        in_telegram=dispatch.person_id is not None,
        checkin_hours=dispatch.checkin_hours,
        open_until=format_when(dispatch.expires_at, locale, rt.settings.zone),
        hours=rt.settings.link_ttl_hours,
        switch=[(other, f"{PREFIX}{token}?lang={other}") for other in LOCALES],
    )


def _from_line(gettext: Callable[[str], str], clinic: str | None) -> str:
    if clinic:
        return gettext("Advice from {clinic}").format(clinic=clinic)
    return gettext("Advice from the legevakt")


async def seen(request: web.Request) -> web.Response:
    """An empty stylesheet; a browser showing the page fetches it, which records "opened"."""
    found, refused = await _lookup(request)
    status = refused.status if refused is not None else 200
    empty = web.Response(body=b"", status=status, content_type="text/css")
    if found is None or found.dispatch is None:
        return empty
    # A stylesheet fetched as one (browsers say so); a person typing the address does not count.
    if request.headers.get("Sec-Fetch-Dest", "style") == "style":
        await dispatches.record_page_opened(request.app[PAGE_RUNTIME], found.dispatch.id)
    return empty


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    form = {key: value for key, value in data.items() if isinstance(value, str)}
    if form.get("lang") in LOCALES:
        request[FORM_LANGUAGE] = form["lang"]
    return form


def _form_refused(
    request: web.Request, dispatch: Dispatch, form: dict[str, str], *, worse: bool = False
) -> web.Response | None:
    """A 403 page (with the numbers; for "worse", to call now) if the form is not this page's."""
    rt = request.app[PAGE_RUNTIME]
    why = _origin_refused(request, rt)
    if why is None and not dispatches.form_token_valid(rt, dispatch, form.get("form", "")):
        why = "form-token"
    if why is None:
        return None
    log.warning("advice page: a form for dispatch %s refused (%s)", dispatch.id, why)
    return _message(
        request,
        _language(request, dispatch),
        status=403,
        heading=_("This could not be done"),
        lines=[
            _(
                "The form did not come from your advice page. Open the link from the SMS again "
                "and try once more."
            )
        ],
        worse=worse,
    )


async def worse_post(request: web.Request) -> web.StreamResponse:
    """ "Jeg blir verre": recorded exactly as the Telegram button is, then what to do now."""
    form = await _form(request)
    found, refused = await _lookup(request)
    if refused is not None:
        return refused
    assert found is not None
    if found.state is not Page.SHOWN or found.dispatch is None:
        return _gone(request, _language(request, found), found.state, worse=True)
    refused = _form_refused(request, found.dispatch, form, worse=True)
    if refused is not None:
        return refused
    rt = request.app[PAGE_RUNTIME]
    await dispatches.record_worse(rt, found.dispatch.id, None, via="web")
    locale = _language(request, found.dispatch)
    # Post/redirect/get: reloading the answer shows it again without counting again.
    where = f"{PREFIX}{request.match_info['token']}/worse?lang={locale}"
    return web.Response(status=303, headers={"Location": where})


async def worse_get(request: web.Request) -> web.Response:
    """What to do now, by tier, for the advice behind the link (shows; records nothing)."""
    found, refused = await _lookup(request)
    if refused is not None:
        return refused
    assert found is not None
    if found.state is not Page.SHOWN or found.dispatch is None:
        return _gone(request, _language(request, found), found.state, worse=True)
    rt = request.app[PAGE_RUNTIME]
    dispatch = found.dispatch
    locale = _language(request, dispatch)
    gettext = rt.catalogs.gettext(locale)
    topic = dispatches.advice_for(rt, dispatch, locale)
    if topic is None:
        return _gone(request, locale, Page.GONE, worse=True)
    worse = render.worse_content(topic, gettext, dispatches.tailoring_of(rt, dispatch).risk_groups)
    token = request.match_info["token"]
    return _render(
        request,
        "worse.html",
        locale,
        title=gettext("What to do now"),
        from_line=_from_line(gettext, found.clinic),
        worse=worse,
        base=f"{PREFIX}{token}",
        switch=[(other, f"{PREFIX}{token}/worse?lang={other}") for other in LOCALES],
    )


async def delete_get(request: web.Request) -> web.Response:
    """ "Delete my data?": what goes, and one button; nothing changes yet."""
    found, refused = await _lookup(request)
    if refused is not None:
        return refused
    assert found is not None
    if found.state is not Page.SHOWN or found.dispatch is None:
        return _gone(request, _language(request, found), found.state)
    rt = request.app[PAGE_RUNTIME]
    locale = _language(request, found.dispatch)
    gettext = rt.catalogs.gettext(locale)
    token = request.match_info["token"]
    return _render(
        request,
        "delete.html",
        locale,
        title=gettext("Delete your data?"),
        from_line=_from_line(gettext, found.clinic),
        base=f"{PREFIX}{token}",
        form=dispatches.form_token(rt, found.dispatch),
        switch=[(other, f"{PREFIX}{token}/delete?lang={other}") for other in LOCALES],
    )


async def delete_post(request: web.Request) -> web.Response:
    """Delete the dispatch's data, as the Telegram button does, and say so with the numbers."""
    form = await _form(request)
    found, refused = await _lookup(request)
    if refused is not None:
        return refused
    assert found is not None
    locale = _language(request, found)
    if found.state is Page.GONE:  # pressed twice, or reloaded: it is gone, as asked
        return _deleted(request, locale)
    if found.state is not Page.SHOWN or found.dispatch is None:
        return _gone(request, locale, found.state)
    refused = _form_refused(request, found.dispatch, form)
    if refused is not None:
        return refused
    await dispatches.delete_dispatch(request.app[PAGE_RUNTIME], found.dispatch.id, via="web")
    return _deleted(request, locale)


def _deleted(request: web.Request, locale: Locale) -> web.Response:
    return _message(
        request,
        locale,
        status=200,
        heading=_("Your data is deleted"),
        lines=[
            _(
                "The advice and everything stored with it are deleted, and this link no longer "
                "works. If you also opened it in Telegram, the chat there keeps what it showed."
            )
        ],
    )


async def stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STYLESHEET, headers={"Content-Type": "text/css; charset=utf-8"})


def build_advice_pages(rt: Runtime) -> web.Application:
    """The advice pages as a sub-application, mounted at /r/ by ``bot.web``."""
    app = web.Application(middlewares=[page_answers], client_max_size=8 * 1024)
    app[PAGE_RUNTIME] = rt
    app[ENVIRONMENT] = make_environment()
    app[THROTTLE] = LinkThrottle[str](
        rt.settings.page_link_attempts, rt.settings.page_link_window_minutes * 60
    )
    app.router.add_get("/advice.css", stylesheet)
    app.router.add_get(f"/{{token:{TOKEN}}}", advice)
    app.router.add_get(f"/{{token:{TOKEN}}}/seen.css", seen)
    app.router.add_post(f"/{{token:{TOKEN}}}/worse", worse_post)
    app.router.add_get(f"/{{token:{TOKEN}}}/worse", worse_get)
    app.router.add_get(f"/{{token:{TOKEN}}}/delete", delete_get)
    app.router.add_post(f"/{{token:{TOKEN}}}/delete", delete_post)
    return app
