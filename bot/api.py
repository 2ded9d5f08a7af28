"""The clinic's HTTP API (``/api/v1``), for call systems: dispatches, re-contacts, topics, and
the clinic's events feed.

Every route needs ``Authorization: Bearer <key>`` (``python -m bot apikey create``); each key
belongs to a clinic, has a request budget and a smaller SMS budget (429 with ``Retry-After``
beyond them), and sees only its clinic's (and region's) dispatches in look-ups, each of which is
audited. Every answer under ``/api/`` is JSON, errors included (``api_errors``): a stable
English ``error`` code and a ``message`` for people, in Bokmål or Nynorsk when
``Accept-Language`` asks for it (English otherwise). Bad input is 422 with one message per
field, every field's at once, and nothing is stored unless the whole request is valid. Phone
numbers travel in bodies only, never in URLs, and are never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.i18n import Locale
from bot.models import ApiKey
from bot.privacy import PhoneError, normalise_phone
from bot.problems import N_, Gettext, Problem, problem, texts
from bot.ratelimit import KeyBuckets, retry_after
from bot.runtime import Runtime
from bot.services import apikeys, audit, clinic_events, dispatches

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)
API_KEY = web.RequestKey("api_key", ApiKey)
LANGUAGE = web.RequestKey("language", str)  # "nb", "nn" or "en"


class Limits:
    """The per-key budgets of one process: every request, and the requests that send an SMS."""

    def __init__(self, rt: Runtime) -> None:
        settings = rt.settings
        self.requests = KeyBuckets(settings.api_rate_per_minute, settings.api_burst)
        self.sms = KeyBuckets(settings.api_sms_rate_per_minute, settings.api_sms_burst)
        self._logged: dict[tuple[str, int], float] = {}

    def refused(self, kind: str, key: ApiKey, wait: float) -> ApiError:
        """The 429 for a key over its budget; logged once a minute per key, not per request."""
        assert key.id is not None
        now = self.requests.clock()
        if now - self._logged.get((kind, key.id), -60.0) >= 60.0:
            self._logged[(kind, key.id)] = now
            log.warning("api: key %s is over its %s budget; answering 429", key.id, kind)
        seconds = retry_after(wait)
        if kind == "sms":
            code, message = (
                "sms_rate_limited",
                N_(
                    "too many SMS from this key: the next can be sent in {seconds} seconds "
                    "(API_SMS_RATE_PER_MINUTE)"
                ),
            )
        else:
            code, message = (
                "rate_limited",
                N_(
                    "too many requests from this key: try again in {seconds} seconds "
                    "(API_RATE_PER_MINUTE)"
                ),
            )
        return ApiError(
            429, code, problem(message, seconds=seconds), headers={"Retry-After": str(seconds)}
        )


LIMITS = web.AppKey("limits", Limits)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_BODY = 64 * 1024
MAX_DEPTH = 16  # no request nests deeper than 2; a deep one is an attack on the parser


# --- language --------------------------------------------------------------------------------


def language_of(header: str | None) -> str:
    """``nb``, ``nn`` or ``en`` from an ``Accept-Language`` header, by its q-values."""
    best, best_q = "en", 0.0
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower().replace("_", "-").split("-")[0]
        language = {"nb": "nb", "no": "nb", "nn": "nn", "en": "en"}.get(code)
        if language is None:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = language, q
    return best


def _gettext(request: web.Request) -> Gettext | None:
    """The gettext for the language the request asked for; None for English (the msgids)."""
    language = request.get(LANGUAGE) or language_of(request.headers.get("Accept-Language"))
    if language not in ("nb", "nn"):
        return None
    rt = request.config_dict.get(RUNTIME)
    if rt is None:
        return None
    locale: Locale = "nb" if language == "nb" else "nn"
    return rt.catalogs.gettext(locale)


def _error(
    request: web.Request,
    status: int,
    error: str,
    message: Problem,
    fields: dict[str, Problem] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error as the API answers every error: ``{"error": code, "message": …, "fields": …}``."""
    gettext = _gettext(request)
    body: dict[str, Any] = {"error": error, "message": message.text(gettext)}
    if fields is not None:
        body["fields"] = texts(fields, gettext)
    response = web.json_response(body, status=status, headers=headers)
    language = request.get(LANGUAGE) or language_of(request.headers.get("Accept-Language"))
    response.headers["Content-Language"] = language
    return response


class ApiError(Exception):
    """Raised by a handler for an answer other than success; ``api_errors`` renders it."""

    def __init__(
        self,
        status: int,
        error: str,
        message: Problem,
        fields: dict[str, Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.message = status, error, message
        self.fields, self.headers = fields, headers


# What aiohttp's own errors (no route, wrong method, a body too large) become under /api/.
_HTTP_ERRORS = {
    400: ("bad_request", N_("the request could not be read")),
    404: ("not_found", N_("there is no such address in the API; the routes are under /api/v1/")),
    405: ("method_not_allowed", N_("this address does not take {method}; it takes {allowed}")),
    413: ("too_large", N_("the body is too large (at most {limit} bytes)")),
    415: ("unsupported_media_type", N_("send a JSON body (Content-Type: application/json)")),
}


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/: every answer JSON, with a stable ``error`` code; no traceback ever leaves."""
    if request.path != "/api" and not request.path.startswith("/api/"):
        return await handler(request)
    request[LANGUAGE] = language_of(request.headers.get("Accept-Language"))
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(request, exc.status, exc.error, exc.message, exc.fields, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error, template = _HTTP_ERRORS.get(exc.status, ("http_error", exc.reason))
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        message = problem(
            template, method=request.method, allowed=", ".join(allowed), limit=MAX_BODY
        )
        headers = {"Allow": ",".join(allowed)} if exc.status == 405 else None
        return _error(request, exc.status, error, message, headers=headers)
    except Exception:
        # The error class and where; the text of an exception may hold what was sent.
        route = request.match_info.route.resource
        where = route.canonical if route is not None else "?"
        log.exception("api: %s %s failed", request.method, where)
        return _error(
            request,
            500,
            "internal_error",
            problem(
                N_(
                    "something went wrong on our side; try again in a moment (with the same "
                    "Idempotency-Key, if you sent one)"
                )
            ),
        )


# --- authentication and bodies ------------------------------------------------------------------


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse any request without a valid, unrevoked API key (401), before reading the body."""
    rt = request.app[RUNTIME]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    key = None
    if scheme.lower() == "bearer" and presented.strip():
        key = await apikeys.verify(rt.sessions, presented.strip())
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            problem(
                N_(
                    "a valid API key is required: send 'Authorization: Bearer <key>' (an admin "
                    "makes one with: python -m bot apikey create --name <system> --org <clinic>)"
                )
            ),
            headers={"WWW-Authenticate": 'Bearer realm="sikkerhetsnett"'},
        )
    limits = request.app[LIMITS]
    wait = limits.requests.take(key.id or 0)
    if wait:
        raise limits.refused("request", key, wait)
    request[API_KEY] = key
    return await handler(request)


def nesting_depth(text: str, limit: int) -> int:
    """How deeply the JSON text nests arrays and objects, counting no further than ``limit + 1``
    (strings skipped), so a deep body is refused before the parser recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", problem(_HTTP_ERRORS[415][1]))
    try:
        text = await request.text()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "too_large", problem(_HTTP_ERRORS[413][1], limit=request.client_max_size)
        ) from None
    except (LookupError, UnicodeDecodeError):  # a charset Python does not know, or bad bytes
        raise ApiError(415, "unsupported_media_type", problem(N_("send JSON in UTF-8"))) from None
    if nesting_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise ApiError(
            400,
            "bad_json",
            problem(N_("the JSON nests deeper than {limit} levels"), limit=MAX_DEPTH),
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", problem(N_("the body is not valid JSON"))) from None


# --- routes ----------------------------------------------------------------------------------


async def create_dispatch(request: web.Request) -> web.Response:
    """POST /api/v1/dispatches: advice for one caller; returns the link and the SMS text."""
    rt = request.app[RUNTIME]
    key: ApiKey = request[API_KEY]
    data = await _json_body(request)
    idem = None
    header = request.headers.get("Idempotency-Key")
    try:
        if header is not None:
            assert key.id is not None
            idem = dispatches.idempotency(key.id, header, data)
            earlier = await _replay(rt, idem)
            if earlier is not None:
                return earlier
        valid = dispatches.validate(data, rt)
    except dispatches.InvalidRequest as exc:
        raise ApiError(
            422, "invalid", problem(N_("the dispatch was not created")), exc.problems
        ) from None
    if valid.request.send_sms:  # a replay above sent nothing, and a refusal costs nothing
        limits = request.app[LIMITS]
        wait = limits.sms.take(key.id or 0)
        if wait:
            raise limits.refused("sms", key, wait)
    visible = await apikeys.visible_organisations(rt.sessions, key.organisation_id)
    try:
        created = await dispatches.create(
            rt,
            valid,
            api_key_id=key.id,
            organisation_id=key.organisation_id,
            visible=visible,
            idem=idem,
        )
    except dispatches.IdempotencyRace:  # the same key at the same moment: the other one won
        assert idem is not None
        earlier = await _replay(rt, idem)
        if earlier is None:  # the winner's row is committed before this one failed
            raise
        return earlier
    if rt.sender is not None and valid.request.send_sms:
        rt.sender.wake()
    return web.json_response(created.as_json(), status=201)


async def _replay(rt: Runtime, idem: dispatches.Idempotency) -> web.Response | None:
    """The first answer again (200, ``Idempotent-Replayed: true``), a 422 if the key came with
    another body, or None if the key is new."""
    try:
        earlier = await dispatches.replay(rt, idem)
    except dispatches.IdempotencyConflict as exc:
        raise ApiError(
            422, "idempotency_key_reused", exc.problem, {"Idempotency-Key": exc.problem}
        ) from None
    if earlier is None:
        return None
    return web.json_response(earlier, status=200, headers={"Idempotent-Replayed": "true"})


async def get_dispatch(request: web.Request) -> web.Response:
    """GET /api/v1/dispatches/{id}: what became of a dispatch this key created (SMS, link, …)."""
    rt = request.app[RUNTIME]
    key: ApiKey = request[API_KEY]
    found = await dispatches.get(rt, request.match_info["dispatch_id"])
    if found is None or found.api_key_id != key.id:
        raise ApiError(
            404, "not_found", problem(N_("no dispatch with this id was made with this key"))
        )
    return web.json_response(dispatches.recontact_json(found, rt))


async def find_recontacts(request: web.Request) -> web.Response:
    """POST /api/v1/recontacts {"phone": …, "hours": 72}: earlier dispatches for this number."""
    rt = request.app[RUNTIME]
    key: ApiKey = request[API_KEY]
    data = await _json_body(request)
    not_made = problem(N_("the lookup could not be made"))
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", not_made, {"body": problem(N_("must be a JSON object"))})
    fields: dict[str, Problem] = {}
    for name in sorted(set(data) - {"phone", "hours"}):
        fields[name] = problem(N_("is not a field of a re-contact lookup"))
    phone = None
    raw = data.get("phone")
    if not isinstance(raw, str) or not raw.strip():
        fields["phone"] = problem(N_("is required"))
    else:
        try:
            phone = normalise_phone(raw)
        except PhoneError as exc:
            fields["phone"] = exc.problem
    hours = data.get("hours", rt.settings.recontact_hours)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 720:
        fields["hours"] = problem(N_("must be a whole number of hours from 1 to 720"))
    if fields:
        raise ApiError(422, "invalid", not_made, fields)
    assert phone is not None
    asker = audit.Asker(
        actor=f"API key {key.id} ({key.name})",
        api_key_id=key.id,
        organisation_id=key.organisation_id,
        visible=await apikeys.visible_organisations(rt.sessions, key.organisation_id),
    )
    found = await dispatches.recontacts(rt, phone, hours, asker)
    return web.json_response(
        {
            "recontact": bool(found),
            "hours": hours,
            "dispatches": [dispatches.recontact_json(d, rt) for d in found],
        }
    )


async def list_topics(request: web.Request) -> web.Response:
    """GET /api/v1/topics: what a call system can offer a nurse, with the tailoring slots, who
    each topic is for (``scope``) and what it is taken from (``sources``)."""
    rt = request.app[RUNTIME]
    topics = []
    for source in sorted(rt.content.advice.values(), key=lambda t: t.id):
        topic = rt.localized(source, "advice", "nb")  # Bokmål, each {threshold} as its number
        topics.append(
            {
                "id": topic.id,
                "version": topic.version,
                "title": topic.title,
                "status": topic.status,
                "example": topic.example,
                "can_be_sent": topic.status == "approved" or rt.settings.draft_advice_allowed,
                "note": topic.tailoring.note,
                "risk_groups": [
                    {"id": group.id, "label": group.label} for group in topic.tailoring.risk_groups
                ],
                "checkin_hours": topic.tailoring.checkin_hours,
                **topic.provenance_json(),
            }
        )
    return web.json_response({"topics": topics})


FEED_LIMIT_DEFAULT = 100
FEED_LIMIT_MAX = 500


async def list_events(request: web.Request) -> web.Response:
    """GET /api/v1/events?after=<event id>&limit=<1..500>: this clinic's events, oldest first,
    after the one named (from the first kept, without ``after``); ``has_more`` when more wait."""
    rt = request.app[RUNTIME]
    key: ApiKey = request[API_KEY]
    raw = request.query.get("limit")
    limit = FEED_LIMIT_DEFAULT
    if raw is not None:
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= FEED_LIMIT_MAX:
            message = problem(
                N_("limit must be a whole number from 1 to {limit}"), limit=FEED_LIMIT_MAX
            )
            raise ApiError(400, "bad_limit", message, {"limit": message})
        limit = int(raw)
    after = request.query.get("after") or None
    async with rt.sessions() as session:
        found = await clinic_events.feed(session, key.organisation_id, after=after, limit=limit + 1)
    if found is None:
        raise ApiError(
            404,
            "unknown_event",
            problem(
                N_(
                    "there is no event with this id for this clinic (or it is past retention): "
                    "start again without 'after'"
                )
            ),
        )
    events = list(found)
    return web.json_response(
        {
            "data": [clinic_events.as_json(event) for event in events[:limit]],
            "has_more": len(events) > limit,
        }
    )


def build_api(rt: Runtime) -> web.Application:
    """The API as a sub-application, mounted at /api/v1 by ``bot.web`` (which also adds
    ``api_errors`` to the main application, so /api/ paths outside v1 answer JSON too)."""
    api = web.Application(middlewares=[authenticate], client_max_size=MAX_BODY)
    api[RUNTIME] = rt
    api[LIMITS] = Limits(rt)
    api.router.add_post("/dispatches", create_dispatch)
    api.router.add_get("/dispatches/{dispatch_id:[0-9a-f]{32}}", get_dispatch)
    api.router.add_post("/recontacts", find_recontacts)
    api.router.add_get("/topics", list_topics)
    api.router.add_get("/events", list_events)
    return api
