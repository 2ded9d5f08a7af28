"""Wiring: builds the runtime and the Telegram application, and runs them with the web server,
the sender (queue → renderers → channel adapters, events to the services) and the scheduler
tick. The one place where the parts are put together.

``running_bot`` is used both by ``python -m bot run`` and by the end-to-end tests, so the tests
exercise the same start-up and shutdown as production.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import signal
import ssl
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, Defaults, ExtBot

from bot import eventloop, outbox
from bot.budget import TelegramBudget
from bot.channels.telegram import SharedRateLimiter, TelegramAdapter
from bot.channels.webhook import WebhookAdapter
from bot.config import TELEGRAM_API_BASE_URL, Settings
from bot.content import load_content
from bot.db import make_engine, make_sessions
from bot.demokit import require_demo
from bot.events import CheckinFinished, Events, SmsFinished, WebhookFinished
from bot.i18n import LOCALES, Catalogs
from bot.messages import ChannelAdapter
from bot.models import ApiKey, Channel
from bot.ptb import BotApplication
from bot.renderers import Renderers
from bot.runtime import RUNTIME_KEY, Runtime
from bot.sender import Sender
from bot.services import audit, dispatches, groups, raabra, webhooks, weekly
from bot.sms import SmsAdapter, SmsProvider, make_provider
from bot.startup import StartupTasks, until_it_answers
from bot.telegram_request import AiohttpRequest
from bot.web import build_web_app
from bot.webhook import WebhookReceiver

log = logging.getLogger(__name__)

# my_chat_member: the bot added to or removed from a leader group (and a person blocking it).
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.MY_CHAT_MEMBER,
]
PURGE_EVERY = dt.timedelta(hours=1)
DIGESTS_EVERY = dt.timedelta(minutes=1)  # monthly #Råbra digests: due to the minute is enough
EXPIRIES_EVERY = dt.timedelta(minutes=1)  # dispatch.expired: within a minute of the link's end


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handle updates concurrently across chats, but one at a time within a chat.

    A person who taps two buttons quickly gets the answers in order; many people are served
    at once.
    """

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self.handled: Counter[str] = Counter()  # updates handled, by type (for /metrics)
        self.in_progress = 0  # updates being handled now
        # The ids of recently handled updates, and who waits for one: lets a caller in this
        # process know that an update has been answered in full (the dialogue tests do).
        self._done: OrderedDict[int, None] = OrderedDict()
        self._waiters: dict[int, asyncio.Event] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        self.in_progress += 1
        try:
            await self._in_chat_order(update, coroutine)
        finally:
            self.in_progress -= 1
            self.handled[update_type(update)] += 1
            if isinstance(update, Update):
                self._mark_done(update.update_id)

    def _mark_done(self, update_id: int) -> None:
        self._done[update_id] = None
        if len(self._done) > 10_000:
            self._done.popitem(last=False)
        waiter = self._waiters.pop(update_id, None)
        if waiter is not None:
            waiter.set()

    async def handled_update(self, update_id: int) -> None:
        """Return once the update with this id has been handled (its handlers have returned)."""
        if update_id in self._done:
            return
        waiter = self._waiters.setdefault(update_id, asyncio.Event())
        await waiter.wait()

    async def _in_chat_order(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        try:
            async with lock:
                await coroutine
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._locks.pop(chat.id, None)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def update_type(update: object) -> str:
    """The kind of an update as Telegram names it (message, callback_query, …), for counting."""
    if not isinstance(update, Update):
        return "other"
    for kind in Update.ALL_TYPES:
        if getattr(update, kind, None) is not None:
            return kind
    return "other"


def build_runtime(settings: Settings) -> Runtime:
    """Load content and catalogs (raising on errors) and open the database."""
    content = load_content(settings.content_dir)
    catalogs = Catalogs(settings.locales_dir)
    engine = make_engine(settings.async_database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessions(engine),
        catalogs=catalogs,
        content=content,
        budget=TelegramBudget(
            settings.outbox_rate_per_second, settings.outbox_chat_rate_per_second
        ),
        # Production settings have PUBLIC_URL (load_settings refuses to start without it).
        public_url=settings.public_url or (settings.page_base if settings.demo else ""),
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def http_request(
    pool_size: int, read_timeout: float | None = 5.0, **timeouts: float | None
) -> AiohttpRequest:
    """A Bot API connection pool (JSON bodies over aiohttp, ``bot.telegram_request``); all of
    them share one TLS context, with the CA bundle PTB's httpx client used (certifi's).

    Building a context with the CA bundle takes ~30 ms; the bot has three pools (updates,
    replies, the outbox sender), so sharing it is ~0.1 s off every start.
    """
    return AiohttpRequest(
        connection_pool_size=pool_size,
        read_timeout=read_timeout,
        ssl_context=_tls_context(),
        **timeouts,
    )


HTML = Defaults(parse_mode=ParseMode.HTML)  # every message the bot writes is Telegram HTML


def budget_of(rt: Runtime) -> TelegramBudget:
    if rt.budget is None:
        s = rt.settings
        rt.budget = TelegramBudget(s.outbox_rate_per_second, s.outbox_chat_rate_per_second)
    return rt.budget


def subscribe_services(events: Events, rt: Runtime | None = None) -> None:
    """What the services do when a queued message is final (``bot.events``)."""
    events.subscribe(CheckinFinished, dispatches.record_checkin_outcome)
    events.subscribe(SmsFinished, dispatches.record_sms_outcome)
    admins: list[int] = list(rt.settings.admin_user_ids) if rt is not None else []

    def gone_notice(key: ApiKey) -> str:
        assert rt is not None
        _ = rt.catalogs.gettext(rt.settings.default_locale)
        return _(
            "The webhook of API key {id} ({name}) answered 410 Gone, so it is turned off and "
            "its queued events are dropped. To turn it on again: python -m bot apikey "
            "set-webhook {id} URL"
        ).format(id=key.id, name=key.name)

    async def after_webhook(session: AsyncSession, finished: WebhookFinished) -> None:
        await webhooks.after_delivery(
            session, finished, admins=admins, notice=gone_notice if rt is not None else None
        )

    events.subscribe(WebhookFinished, after_webhook)


def build_sender(rt: Runtime, adapters: list[ChannelAdapter], **options: Any) -> Sender:
    """The one sender over ``adapters``, with the renderers and the services' subscriptions;
    ``options`` override the settings' timing (tests)."""
    events = Events()
    subscribe_services(events, rt)
    timing: dict[str, Any] = {
        "tick_seconds": rt.settings.outbox_tick_seconds,
        "max_backoff_seconds": rt.settings.send_max_backoff_seconds,
    }
    return Sender(rt.sessions, adapters, Renderers(rt), events, **(timing | options))


def telegram_bot(token: str, base_url: str, pool_size: int) -> ExtBot[None]:
    """A Bot of the sender's own (not yet initialised): HTML by default, like the replies.

    It never calls getUpdates, but a Bot given no ``get_updates_request`` builds PTB's default
    client for it, with a TLS context of its own (~50 ms of every start): a one-connection pool
    of ours, sharing the TLS context, stands in.
    """
    return ExtBot(
        token,
        base_url=base_url,
        request=http_request(pool_size),
        get_updates_request=http_request(1),
        defaults=HTML,
    )


def make_sender(rt: Runtime, token: str, base_url: str, sms: SmsProvider) -> Sender:
    """The one sender with the settings' limits: Telegram on a Bot of its own (not yet
    initialised) and the shared budget, SMS through ``sms``."""
    settings = rt.settings
    bot = telegram_bot(token, base_url, settings.outbox_in_flight + 4)
    return build_sender(
        rt,
        [
            TelegramAdapter(bot, budget_of(rt), concurrency=settings.outbox_in_flight),
            SmsAdapter(sms),
            webhook_adapter(rt),
        ],
    )


def webhook_adapter(rt: Runtime, **options: Any) -> WebhookAdapter:
    """The clinics' webhooks, each request's outcome noted on its key (for /status)."""

    async def record(key_id: int, failure: str | None) -> None:
        await webhooks.record_attempt(rt.sessions, key_id, failure)

    return WebhookAdapter(rt.settings, record=record, **options)


def build_application(rt: Runtime, token: str, base_url: str) -> BotApplication:
    """The python-telegram-bot application with every handler registered."""
    from handlers import register_all

    app = (
        Application.builder()
        .token(token)
        .base_url(base_url)
        .request(http_request(256))
        .get_updates_request(http_request(1, read_timeout=35))
        .rate_limiter(SharedRateLimiter(budget_of(rt)))
        .defaults(HTML)
        .concurrent_updates(PerChatUpdateProcessor())
        .build()
    )
    app.bot_data[RUNTIME_KEY] = rt
    register_all(app, rt)
    return app


async def _tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The short scheduler tick: wake the sender; now and then, purge old outbox rows."""
    rt: Runtime = context.application.bot_data[RUNTIME_KEY]
    if rt.sender is not None:
        rt.sender.wake()
    # The database is the schedule: weekly questions and reminders that are due now (one look
    # first; most ticks find nothing due).
    try:
        await weekly.send_due(rt)
        await groups.send_due_group_questions(rt)
    except Exception:  # a database hiccup must not stop the rest of the tick
        log.exception("weekly: tick failed")
    job_data = context.job.data if context.job is not None else None
    if not isinstance(job_data, dict):  # the job is scheduled with a dict (``running_bot``)
        job_data = {}
    now = dt.datetime.now(dt.UTC)
    last_digests = job_data.get("last_digests")
    if last_digests is None or now - last_digests >= DIGESTS_EVERY:
        job_data["last_digests"] = now
        try:
            await raabra.send_due_digests(rt, now)
        except Exception:  # as above: the rest of the tick goes on
            log.exception("raabra: digests failed")
    last_expiries = job_data.get("last_expiries")
    if last_expiries is None or now - last_expiries >= EXPIRIES_EVERY:
        job_data["last_expiries"] = now
        try:
            await dispatches.note_expired_links(rt, now=now)
        except Exception:  # as above: the rest of the tick goes on
            log.exception("dispatches: noting expired links failed")
    last = job_data.get("last_purge")
    if last is None or now - last > PURGE_EVERY:
        job_data["last_purge"] = now
        purged = await outbox.purge_finished(
            rt.sessions, dt.timedelta(days=rt.settings.retention_days)
        )
        if purged:
            log.info("retention: deleted %d old outbox rows", purged)
        lookups_gone = await audit.purge_old(rt.sessions, rt.settings.audit_retention_days)
        if lookups_gone:
            log.info("retention: deleted %d old entries of the look-up audit log", lookups_gone)
        dispatches_gone, people_gone = await dispatches.purge_old(rt)
        if dispatches_gone or people_gone:
            log.info(
                "retention: deleted %d old dispatches and %d people with nothing left",
                dispatches_gone,
                people_gone,
            )


@dataclass
class RunningBot:
    rt: Runtime
    app: BotApplication
    web_url: str | None
    webhook: WebhookReceiver | None = None
    startup: StartupTasks | None = None


@contextlib.asynccontextmanager
async def running_bot(
    rt: Runtime,
    token: str,
    base_url: str,
    *,
    web_host: str | None = None,
    web_port: int | None = None,
    shutdown_deadline: float = 10.0,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> AsyncIterator[RunningBot]:
    """Run the bot, the outbox sender, the tick and, if asked, the web server.

    Updates come by long polling, or with ``webhook_url`` by Telegram POSTing them to the web
    server (which must run then) at that URL's path, carrying ``webhook_secret``. The webhook is
    set at start-up and left in place at shutdown: another instance may be serving it.
    """
    settings = rt.settings
    if webhook_url is not None and (web_port is None or not webhook_secret):
        raise ValueError("webhook mode needs the web server (web_port) and a webhook_secret")
    app = build_application(rt, token, base_url)
    sms_provider = make_provider(settings)
    rt.sender = make_sender(rt, token, base_url, sms_provider)
    telegram = rt.sender.adapter(Channel.TELEGRAM)
    assert isinstance(telegram, TelegramAdapter)
    sender_bot = telegram.bot
    runner: web.AppRunner | None = None
    web_url = None
    receiver = None
    if webhook_url is not None and webhook_secret:
        receiver = WebhookReceiver(app, webhook_secret, urlsplit(webhook_url).path or "/")
    # Only a refused token stops start-up; the rest waits for a Bot API that is having a bad
    # minute (bot/startup.py), and what can be done later is done in the background.
    startup = StartupTasks()
    await _all_answer(  # both at once: one round trip to Telegram less on every start
        until_it_answers(app.initialize, "getMe"),
        until_it_answers(sender_bot.initialize, "getMe (outbox sender)"),
    )
    try:
        rt.bot_username = app.bot.username
        # Set while the bot already serves: nobody needs the menu before the first update can be
        # answered, and three Bot API round trips are not spent before /healthz says 200.
        startup.begin("command_menus", lambda: _set_command_menus(app, rt))
        if web_port is not None:
            processor = app.update_processor
            web_app = build_web_app(
                rt,
                bot=app.bot,
                updates=processor.handled if isinstance(processor, PerChatUpdateProcessor) else {},
                webhook=receiver,
                startup=startup,
            )
            runner = web.AppRunner(web_app, access_log=None)
            await runner.setup()
            host = web_host or settings.bind_host
            site = web.TCPSite(runner, host, web_port)
            await site.start()
            port = runner.addresses[0][1]  # the real port when 0 asked for a free one
            web_url = f"http://{host}:{port}/"
            if settings.demo and settings.public_url is None:  # the demo's pages are here
                rt.public_url = web_url.rstrip("/")
        await app.start()
        assert app.job_queue is not None
        app.job_queue.run_repeating(
            _tick, interval=settings.outbox_tick_seconds, first=0, data={}, name="tick"
        )
        rt.sender.start()
        if webhook_url is not None:
            # Updates already waiting at Telegram are kept: they come to the webhook next.
            await startup.start(
                "webhook",
                lambda: app.bot.set_webhook(
                    webhook_url,
                    secret_token=webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    drop_pending_updates=False,
                ),
                essential=True,
            )
            log.info("bot running as @%s, updates by webhook", rt.bot_username)
        else:
            updater = app.updater
            assert updater is not None
            await startup.start(
                "polling",
                lambda: updater.start_polling(
                    poll_interval=0,
                    timeout=dt.timedelta(seconds=25),
                    allowed_updates=ALLOWED_UPDATES,
                ),
                essential=True,
            )
            log.info("bot running as @%s", rt.bot_username)
        yield RunningBot(rt=rt, app=app, web_url=web_url, webhook=receiver, startup=startup)
    finally:
        await startup.stop()
        # Graceful: stop taking updates and claiming, finish what is in flight, release the rest.
        # The webhook is not deleted (another instance may serve it); until the server closes,
        # updates get 503 and Telegram keeps them.
        if receiver is not None:
            receiver.close()
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if rt.sender is not None:
            await rt.sender.stop(deadline=shutdown_deadline)
        await sms_provider.close()
        hooks = (
            rt.sender.adapter(Channel.WEBHOOK)
            if rt.sender is not None and Channel.WEBHOOK in rt.sender.channels
            else None
        )
        if isinstance(hooks, WebhookAdapter):
            await hooks.close()
        if app.running:
            await app.stop()
        await app.shutdown()
        await sender_bot.shutdown()
        if runner is not None:
            await runner.cleanup()


async def _all_answer(*calls: Awaitable[None]) -> None:
    """Run the calls together; the first error (a refused token) stops the others."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def _set_command_menus(app: BotApplication, rt: Runtime) -> None:
    """The default menu and one per language, all at once (each is its own Bot API call); an
    attempt ends when every call has answered, and fails with the first error."""
    from handlers.common import commands

    answers = await asyncio.gather(
        app.bot.set_my_commands(commands(rt.catalogs, rt.settings.default_locale)),
        *(
            app.bot.set_my_commands(commands(rt.catalogs, locale), language_code=locale)
            for locale in LOCALES
        ),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer


async def serve(settings: Settings, rt: Runtime) -> None:
    """``python -m bot run``: run until SIGINT or SIGTERM; in demo mode with a local Bot API."""
    kit = require_demo() if settings.demo else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s", eventloop.describe(loop))
    starting = asyncio.current_task()

    def on_stop() -> None:  # while start-up still waits for the Bot API, stop waiting
        stop.set()
        if starting is not None:
            starting.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_stop)
    reloads: set[asyncio.Task[Any]] = set()

    def on_sighup() -> None:  # validate and swap content; a bad edit never stops the bot
        from bot.reload import reload_and_tell_admins  # the content check, babel's .po reader

        task = asyncio.create_task(reload_and_tell_admins(rt), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)

    async with contextlib.AsyncExitStack() as stack:
        if kit is not None:
            api = await stack.enter_async_context(
                kit.local_api("127.0.0.1", settings.local_bot_api_port)
            )
            token, base_url = api.token, api.base_url
        else:
            assert settings.telegram_bot_token is not None
            token = settings.telegram_bot_token.get_secret_value()
            base_url = settings.telegram_api_base_url or TELEGRAM_API_BASE_URL
        running = await stack.enter_async_context(
            running_bot(
                rt,
                token,
                base_url,
                web_port=settings.port,
                webhook_url=settings.webhook_url,
                webhook_secret=settings.webhook_token() if settings.webhook_url else None,
            )
        )
        starting = None
        if settings.demo:
            print(demo_instructions(settings, running), flush=True)
        await stop.wait()
        log.info("shutting down")


def demo_instructions(settings: Settings, running: RunningBot) -> str:
    user_side = f"http://127.0.0.1:{settings.local_bot_api_port}"
    page = running.web_url or "(off)"
    return f"""
Open the demo in a browser: {page}

Sikkerhetsnett is running in DEMO MODE (no TELEGRAM_BOT_TOKEN set). The page above lets you be
the nurse, the caller, a leader and the admin; it is a local page, not Telegram.
This is the real bot, talking to a local stand-in for Telegram at {user_side}
(not Telegram itself). Data is kept in {settings.async_database_url.split(":///")[-1]}.

Or talk to it as a person in a terminal: open a second terminal in this folder and run

    make chat

You are then "Kari" in a private chat with the bot. Type /start, /language, /privacy or
/help and press the buttons by their number.

To be a caller who has just phoned the legevakt, make advice as a nurse would, in a third
terminal:

    .venv/bin/python -m bot dispatch create --topic fever-child --locale nb --checkin-hours 6

and open the "advice_url" it prints in a browser: that is the page the SMS links to. To
continue in Telegram as the caller, paste its "deep_link" into `make chat`.
To be a leader in the weekly reflection, paste the link from

    .venv/bin/python -m bot invite create --org "Demo HF" --role unit-leader --uses 10

Topics: .venv/bin/python -m bot content list. Call systems use the HTTP API instead:
POST {running.web_url or "(off)"}api/v1/dispatches, with a key from
`python -m bot apikey create --name … --org …`.

The bot's own web server: {running.web_url or "(off)"}healthz
Stop the bot with Ctrl+C.
"""
