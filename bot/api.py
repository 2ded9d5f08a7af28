"""The clinic's HTTP API (``/api/v1``), for call systems: dispatches, re-contacts, topics.

Every route needs ``Authorization: Bearer <key>`` (``python -m bot apikey create``). Errors are
JSON with a plain ``message``; bad input is 422 with one message per field, and nothing is stored
unless the whole request is valid. Phone numbers travel in bodies only, never in URLs, and are
never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.models import ApiKey
from bot.privacy import PhoneError, normalise_phone
from bot.runtime import Runtime
from bot.services import apikeys, dispatches

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)
API_KEY = web.RequestKey("api_key", ApiKey)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse any request without a valid, unrevoked API key (401), before reading the body."""
    rt = request.app[RUNTIME]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    key = None
    if scheme.lower() == "bearer" and presented.strip():
        key = await apikeys.verify(rt.sessions, presented.strip())
    if key is None:
        response = _error(
            401,
            "unauthorized",
            "a valid API key is required: send 'Authorization: Bearer <key>' "
            "(an admin makes keys with: python -m bot apikey create --name <clinic>)",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="sikkerhetsnett"'
        return response
    request[API_KEY] = key
    return await handler(request)


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": "unsupported_media_type", "message": "send a JSON body"}),
            content_type="application/json",
        )
    try:
        return await request.json()
    except web.HTTPRequestEntityTooLarge:
        raise web.HTTPRequestEntityTooLarge(
            max_size=request.client_max_size,
            actual_size=request.content_length or 0,
            text=json.dumps({"error": "too_large", "message": "the body is too large"}),
            content_type="application/json",
        ) from None
    except LookupError:  # a charset Python does not know
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": "unsupported_media_type", "message": "send JSON in UTF-8"}),
            content_type="application/json",
        ) from None
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "bad_json", "message": "the body is not valid JSON"}),
            content_type="application/json",
        ) from None


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
        return _error(422, "invalid", "the dispatch was not created", fields=exc.fields)
    try:
        created = await dispatches.create(rt, valid, api_key_id=key.id, idem=idem)
    except dispatches.IdempotencyRace:  # the same key at the same moment: the other one won
        assert idem is not None
        earlier = await _replay(rt, idem)
        if earlier is None:  # the winner's row is committed before this one failed
            raise
        return earlier
    if rt.sms_sender is not None and valid.request.send_sms:
        rt.sms_sender.wake()
    return web.json_response(created.as_json(), status=201)


async def _replay(rt: Runtime, idem: dispatches.Idempotency) -> web.Response | None:
    """The first answer again (200, ``Idempotent-Replayed: true``), a 422 if the key came with
    another body, or None if the key is new."""
    try:
        earlier = await dispatches.replay(rt, idem)
    except dispatches.IdempotencyConflict as exc:
        return _error(422, "idempotency_key_reused", str(exc), fields={"Idempotency-Key": str(exc)})
    if earlier is None:
        return None
    return web.json_response(earlier, status=200, headers={"Idempotent-Replayed": "true"})


async def get_dispatch(request: web.Request) -> web.Response:
    """GET /api/v1/dispatches/{id}: what became of a dispatch this key created (SMS, link, …)."""
    rt = request.app[RUNTIME]
    key: ApiKey = request[API_KEY]
    found = await dispatches.get(rt, request.match_info["dispatch_id"])
    if found is None or found.api_key_id != key.id:
        return _error(404, "not_found", "no dispatch with this id was made with this key")
    return web.json_response(dispatches.recontact_json(found, rt))


async def find_recontacts(request: web.Request) -> web.Response:
    """POST /api/v1/recontacts {"phone": …, "hours": 72}: earlier dispatches for this number."""
    rt = request.app[RUNTIME]
    data = await _json_body(request)
    fields: dict[str, str] = {}
    if not isinstance(data, dict):
        return _error(
            422, "invalid", "the body must be a JSON object", fields={"body": "not an object"}
        )
    unknown = sorted(set(data) - {"phone", "hours"})
    for name in unknown:
        fields[name] = "is not a field of a re-contact lookup"
    phone = None
    raw = data.get("phone")
    if not isinstance(raw, str) or not raw.strip():
        fields["phone"] = "is required"
    else:
        try:
            phone = normalise_phone(raw)
        except PhoneError as exc:
            fields["phone"] = str(exc)
    hours = data.get("hours", rt.settings.recontact_hours)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 720:
        fields["hours"] = "must be a whole number of hours from 1 to 720"
    if fields:
        return _error(422, "invalid", "the lookup could not be made", fields=fields)
    assert phone is not None
    found = await dispatches.recontacts(rt, phone, hours)
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


def build_api(rt: Runtime) -> web.Application:
    """The API as a sub-application, mounted at /api/v1 by ``bot.web``."""
    api = web.Application(middlewares=[authenticate], client_max_size=64 * 1024)
    api[RUNTIME] = rt
    api.router.add_post("/dispatches", create_dispatch)
    api.router.add_get("/dispatches/{dispatch_id:[0-9a-f]{32}}", get_dispatch)
    api.router.add_post("/recontacts", find_recontacts)
    api.router.add_get("/topics", list_topics)
    return api
