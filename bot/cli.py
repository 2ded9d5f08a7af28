"""The command line: ``python -m bot run | db | content | apikey | dispatch | invite | group | …``.

Commands parse arguments, call the application or services, and print; errors become one plain
sentence and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, NoReturn

import click

from bot.config import ConfigError, Settings, load_settings
from bot.content import ContentErrors, load_content

HEADER = "Sikkerhetsnett-Signature"  # bot.channels.webhook.HEADER, without importing aiohttp


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Sikkerhetsnett: advice after a call to the legevakt, and weekly reflection for leaders."""


def _schema_ready(settings: Settings, migrate_first: bool = False) -> None:
    """Migrate in the demo (or when asked); in production only check, and refuse an old schema.

    With several instances, migrations run once per release (the Procfile's release phase, or
    ExecStartPre under systemd), not on every boot; ``migrate.upgrade`` is safe either way.
    """
    from bot import migrate

    if settings.demo or migrate_first:
        migrate.upgrade_if_behind(settings.async_database_url, secrets=settings.secrets())
        return
    try:
        migrate.require_current(settings.async_database_url)
    except migrate.SchemaNotCurrent as exc:
        _fail(f"The bot cannot start: {exc}.", 1)


@main.command()
@click.option(
    "--migrate",
    "migrate_first",
    is_flag=True,
    help="Upgrade the schema first (production; the demo always does).",
)
def run(migrate_first: bool) -> None:
    """Run the bot.

    Without TELEGRAM_BOT_TOKEN it runs the demo against a local stand-in for Telegram, on
    SQLite under var/. With a token it uses Telegram (long polling, or WEBHOOK_URL); the schema
    must then be current (python -m bot db upgrade), unless --migrate is given.

    \b
    Example:
        python -m bot run
    """
    import logging

    from bot import eventloop
    from bot.app import build_runtime, serve
    from bot.config import startup_warnings
    from bot.demokit import require_demo
    from bot.i18n import CatalogError
    from bot.logs import setup_logging
    from bot.startup import BotTokenRefused

    settings = _settings()
    if settings.demo:
        try:
            require_demo()  # before anything is made: a production install has no demo
        except ConfigError as exc:
            _fail(str(exc))
    setup_logging(settings.log_level)
    for warning in startup_warnings(settings):
        logging.getLogger("bot").warning(warning)
    _schema_ready(settings, migrate_first)
    try:
        rt = build_runtime(settings)
    except ContentErrors as exc:
        click.echo("The bot cannot start: the content has errors.", err=True)
        for error in exc.errors:
            click.echo(f"  {error}", err=True)
        sys.exit(1)
    except CatalogError as exc:
        _fail(str(exc), 1)
    try:
        eventloop.run(serve(settings, rt))
    except BotTokenRefused as exc:
        _fail(f"The bot cannot start: {exc}", 1)
    except asyncio.CancelledError:  # SIGTERM while start-up waited for the Bot API
        sys.exit(0)
    except OSError as exc:
        _fail(f"The bot cannot start: {exc.strerror or exc} (is another copy already running?)", 1)


# --- db -------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Bring the database schema up to date (safe to run again).

    \b
    Example:
        DATABASE_URL=postgresql://bot@localhost/bot python -m bot db upgrade
    """
    from bot import migrate

    settings = _settings()
    migrate.upgrade(settings.async_database_url, revision, secrets=settings.secrets())
    click.echo(f"database at revision {migrate.current_revision(settings.async_database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Step the schema back to REVISION (e.g. -1, or base). Data in dropped tables is lost.

    \b
    Example:
        python -m bot db downgrade -1
    """
    from bot import migrate

    settings = _settings()
    migrate.downgrade(settings.async_database_url, revision, secrets=settings.secrets())
    click.echo(f"database at revision {migrate.current_revision(settings.async_database_url)}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does, in a few words.")
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Fill it from the difference between bot/models.py and the database (at head).",
)
def db_revision(message: str, autogenerate: bool) -> None:
    """Write the next migration script under bot/migrations/versions/ (then read and edit it).

    \b
    Example:
        python -m bot db revision -m "audit log" --autogenerate
    """
    from alembic.util import CommandError

    from bot import migrate

    settings = _settings()
    try:
        if autogenerate:
            migrate.require_current(settings.async_database_url)
        path = migrate.new_revision(settings.async_database_url, message, autogenerate)
    except migrate.SchemaNotCurrent as exc:
        _fail(f"--autogenerate compares the models with a database at the newest schema: {exc}.")
    except CommandError as exc:
        _fail(f"No migration written: {exc}")
    click.echo(f"wrote {path}; read it, adjust it, and run: python -m bot db upgrade")


@db.command("current")
def db_current() -> None:
    """Print the database's schema revision.

    \b
    Example:
        python -m bot db current
    """
    from bot import migrate

    settings = _settings()
    current = migrate.current_revision(settings.async_database_url)
    head = migrate.head_revision()
    click.echo(f"{current or 'empty'} (latest: {head})")


# --- content --------------------------------------------------------------------------------


@main.group()
def content() -> None:
    """Check and list the content under content/."""


@content.command("check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--lix-limit",
    type=click.FloatRange(min=0, min_open=True, max=100),
    default=None,
    help="Warn about advice sections with a higher LIX (default: LIX_LIMIT, 40).",
)
def content_check(fmt: str, lix_limit: float | None) -> None:
    """Check every content file; print each problem with file:line.

    Checks the schema, the Nynorsk and UI translations and their placeholders, that worsening
    signs are concrete, that the advice fits one Telegram message and the link SMS one SMS, and
    the readability (LIX) of each advice section. Exits 1 when there are errors; warnings alone
    exit 0.

    \b
    Example:
        python -m bot content check
        python -m bot content check --format json
        python -m bot content check --lix-limit 45
    """
    from bot.content.check import check_content

    settings = _settings()
    report = check_content(
        settings.content_dir,
        settings.locales_dir,
        lix_limit=settings.lix_limit if lix_limit is None else lix_limit,
    )
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        for finding in report.findings:
            click.echo(str(finding), err=finding.severity == "error")
        click.echo(report.summary())
    sys.exit(1 if report.errors else 0)


@content.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def content_list(fmt: str) -> None:
    """List advice topics, leader roles and reflection programmes.

    \b
    Example:
        python -m bot content list --format json
    """
    settings = _settings()
    try:
        bundle = load_content(settings.content_dir)
    except ContentErrors as exc:
        _fail(f"The content has errors; run `python -m bot content check`.\n{exc}", 1)
    from bot.content.check import filled  # every {threshold} shown as its number

    topics = [filled(bundle, topic) for topic in bundle.advice.values()]
    listing: dict[str, Any] = {
        "advice_topics": [
            {
                "id": t.id,
                "title": t.title,
                "status": t.status,
                "version": t.version,
                **t.provenance_json(),
            }
            for t in topics
        ],
        "roles": [
            {"id": role.id, "title": role.title, "programme": programme.id}
            for programme, role in bundle.roles.values()
        ],
        "programmes": [
            {
                "id": p.id,
                "title": p.title,
                "roles": [r.id for r in p.roles],
                "themes": len(p.themes),
                "questions": sum(len(t.questions) for t in p.themes),
            }
            for p in bundle.programmes.values()
        ],
    }
    if fmt == "json":
        click.echo(json.dumps(listing, ensure_ascii=False, indent=2))
        return
    for section, items in listing.items():
        click.echo(section.replace("_", " ") + ":")
        for item in items:
            click.echo(f"  {item['id']:<28} {item['title']}")


@content.command("translate")
@click.option(
    "--to", "to", type=click.Choice(["nn"]), required=True, help="The language to draft (nn)."
)
@click.option(
    "--domain",
    type=click.Choice(["content", "messages"]),
    default="content",
    show_default=True,
    help="The catalog: the content, or the bot's own texts.",
)
@click.option("--dry-run", is_flag=True, help="Print the drafts; write nothing.")
def content_translate(to: str, domain: str, dry_run: bool) -> None:
    """Draft Nynorsk for the EMPTY entries of a catalog with Apertium (Bokmål to Nynorsk).

    Every draft is marked fuzzy, so the bot never shows it until a person has read it and
    removed the flag in a PO editor. Existing translations are never changed. Needs Apertium:
    sudo apt-get install apertium apertium-nno-nob

    \b
    Example:
        python -m bot content translate --to nn --dry-run
        python -m bot content translate --to nn --domain messages
    """
    from pathlib import Path

    from bot.content.translate import BATCH_SIZE, TranslateError, draft_catalog

    settings = _settings()
    bar: Any = None

    def start(total: int) -> None:
        nonlocal bar
        if total > BATCH_SIZE:  # more than one Apertium run: show how far it is
            bar = click.progressbar(
                length=total, label="Translating with Apertium", file=sys.stderr
            )
            bar.__enter__()

    def advance(done: int) -> None:
        if bar is not None:
            bar.update(done)

    try:
        report = draft_catalog(
            settings.locales_dir,
            domain,
            locale=to,
            dry_run=dry_run,
            on_start=start,
            progress=advance,
        )
    except TranslateError as exc:
        _fail(str(exc), 1)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    try:
        where = str(report.po_path.resolve().relative_to(Path.cwd()))
    except ValueError:
        where = str(report.po_path)
    if dry_run:
        for draft in report.drafts:
            click.echo(f"{draft.context or draft.msgid}\n  nb: {draft.source}\n  nn: {draft.draft}")
    for label in report.failed:
        click.echo(f"Left empty, Apertium did not keep its placeholders: {label}", err=True)
    for label in report.no_source:
        click.echo(f"Left empty, no Bokmål text to translate from: {label}", err=True)
    count = len(report.drafts)
    drafts = f"{count} draft{'s' * (count != 1)}"
    if not report.empty:
        click.echo(f"No empty entries in {where}: nothing to translate.")
    elif dry_run:
        click.echo(f"{drafts} would be written to {where}; nothing was written (--dry-run).")
    else:
        click.echo(
            f"{drafts} written to {where}, marked fuzzy: review them in a PO editor and "
            "remove the fuzzy flag"
        )


@content.command("preview")
@click.argument("topic", required=False)
@click.option("--locale", type=click.Choice(["nb", "nn"]), default="nb", show_default=True)
@click.option("--note", default=None, help="The nurse's note to the caller.")
@click.option("--risk", "risk", multiple=True, help="A risk group of the topic; repeatable.")
@click.option("--checkin-hours", type=int, default=None, help="A check-in after N hours.")
@click.option("--programme", default=None, help="Preview a reflection programme's questions.")
@click.option("--role", default=None, help="The leader role whose questions to show.")
def content_preview(
    topic: str | None,
    locale: str,
    note: str | None,
    risk: tuple[str, ...],
    checkin_hours: int | None,
    programme: str | None,
    role: str | None,
) -> None:
    """Print what a caller reads for TOPIC, or the weekly questions a leader role gets.

    The advice comes out as the bot renders it (as plain text), with its buttons and the SMS
    that carries the link. Text with no translation yet (or only a fuzzy draft) shows in Bokmål,
    as in the bot; `content check` lists those.

    \b
    Example:
        python -m bot content preview fever-child --locale nn \\
            --note "Ring igjen i kveld." --risk infant-under-3-months --checkin-hours 6
        python -m bot content preview --programme systemperspektiv --role unit-leader --locale nn
    """
    from bot.content import preview
    from bot.i18n import CatalogError, Catalogs, as_locale

    if topic is None and programme is None and role is None:
        raise click.UsageError("Give a TOPIC, or --programme and --role.")
    if topic is not None and (programme is not None or role is not None):
        raise click.UsageError("Give either a TOPIC or --programme/--role, not both.")
    if topic is None and (note is not None or risk or checkin_hours is not None):
        raise click.UsageError("--note, --risk and --checkin-hours go with a TOPIC.")
    settings = _settings()
    try:
        bundle = load_content(settings.content_dir)
        catalogs = Catalogs(settings.locales_dir)
    except ContentErrors as exc:
        _fail(f"The content has errors; run `python -m bot content check`.\n{exc}", 1)
    except CatalogError as exc:
        _fail(str(exc), 1)
    loc = as_locale(locale)
    try:
        if topic is not None:
            text = preview.advice_preview(
                bundle,
                catalogs,
                topic,
                loc,
                note=note,
                risk_groups=risk,
                checkin_hours=checkin_hours,
                page_base=settings.page_base,
                link_hours=settings.link_ttl_hours,
                zone=settings.zone,
            )
            model: Any = bundle.advice[topic]
        else:
            text = preview.programme_preview(bundle, catalogs, programme, role, loc)
            model, _role = preview.find_role(bundle, programme, role)
    except preview.PreviewError as exc:
        _fail(str(exc), 1)
    click.echo(text)
    if model.status != "approved":
        click.echo(f"Note: '{model.id}' is a draft awaiting clinical approval.", err=True)


# --- API keys and dispatches ----------------------------------------------------------------


def _runtime(settings: Settings) -> Any:
    """The runtime for a one-off command: migrated database, content and catalogs."""
    from bot.app import build_runtime
    from bot.i18n import CatalogError

    _schema_ready(settings)
    try:
        return build_runtime(settings)
    except ContentErrors as exc:
        _fail(f"The content has errors; run `python -m bot content check`.\n{exc}", 1)
    except CatalogError as exc:
        _fail(str(exc), 1)


@main.group()
def apikey() -> None:
    """API keys for the clinic's call system."""


@apikey.command("create")
@click.option("--name", required=True, help="The system that uses it, e.g. the call system.")
@click.option(
    "--org",
    "org",
    required=True,
    help="The clinic it belongs to (made if new): its look-ups see that clinic's dispatches.",
)
@click.option(
    "--display-name",
    default=None,
    help="The clinic's name as callers read it in the SMS and on the advice page (≤ 32).",
)
@click.option(
    "--webhook-url",
    default=None,
    help="Where the clinic's events are POSTed, signed (https; README, 'Webhooks').",
)
def apikey_create(name: str, org: str, display_name: str | None, webhook_url: str | None) -> None:
    """Make an API key for a clinic and print it once. Only a hash is stored: keep it safe.

    The key's re-contact look-ups see the dispatches of its clinic, and of the clinics in the
    same region (`org region`).

    \b
    The SMS to callers names the clinic: its --display-name, or else its own name if that fits
    (32 characters, letters an SMS can carry); see `org name`.

    \b
    With --webhook-url, the clinic's events about the dispatches this key makes are POSTed
    there, signed with a secret (whsec_…) printed once with the key.

    \b
    Example:
        python -m bot apikey create --name "Telefonsystemet" --org "Legevakten i Bergen"
    """
    from bot.netguard import Refused, check_destination
    from bot.services import apikeys, webhooks

    if not name.strip():
        _fail("Give the key a name, e.g. --name 'Telefonsystemet'.")
    if not org.strip():
        _fail("Give the key's clinic, e.g. --org 'Legevakten i Bergen'.")
    if display_name is not None and (problem := apikeys.display_name_problem(display_name)):
        _fail(f"--display-name: {problem}.")
    settings = _settings()
    if webhook_url is not None:
        try:
            asyncio.run(check_destination(webhook_url, settings))
        except Refused as exc:
            _fail(f"--webhook-url: {exc}.")
    rt = _runtime(settings)

    async def make() -> tuple[Any, str, Any, str | None]:
        try:
            row, key = await apikeys.create(rt.sessions, name, org, display_name=display_name)
            secret = None
            if webhook_url is not None:
                assert row.id is not None
                _key, secret = await webhooks.set_webhook(
                    rt.sessions, settings, row.id, webhook_url
                )
            shown = apikeys.shown_name(await apikeys.organisation(rt.sessions, row.organisation_id))
            return row, key, shown, secret
        finally:
            await rt.engine.dispose()

    row, key, shown, secret = asyncio.run(make())
    click.echo(f"API key {row.id} for {row.name} ({' '.join(org.split())}):\n\n    {key}\n")
    if secret is not None:
        click.echo(f"Webhook signing secret (check each request's {HEADER}):\n\n    {secret}\n")
    click.echo(
        "This is the only time the key"
        + (" and the secret are" if secret is not None else " is")
        + " shown. Send the key as 'Authorization: Bearer <key>'."
    )
    if shown:
        click.echo(f"The SMS to callers says it is from: {shown}")
    else:
        click.echo(
            "The clinic's name does not fit an SMS (32 characters at most), so the SMS says it "
            "is from the legevakt. Give it a shorter one: python -m bot org name --org "
            f"'{' '.join(org.split())}' --display-name '…'"
        )


@apikey.command("list")
def apikey_list() -> None:
    """List API keys (never the keys themselves): id, state, last use, name and clinic.

    The last use is written at most once a minute.

    \b
    Example:
        python -m bot apikey list
    """
    from bot.services import apikeys

    rt = _runtime(_settings())

    async def fetch() -> list[Any]:
        try:
            return await apikeys.list_keys(rt.sessions)
        finally:
            await rt.engine.dispose()

    for info in asyncio.run(fetch()):
        row = info.key
        state = "revoked" if row.revoked_at else "active"
        used = row.last_used_at.isoformat(timespec="minutes") if row.last_used_at else "never"
        hook = ""
        if row.webhook_url is not None:
            off = " (off after 410)" if row.webhook_disabled_at is not None else ""
            hook = f"  webhook {row.webhook_url}{off}"
        click.echo(
            f"{row.id:>4}  {state:<8} last used {used:<17} {row.name} — {info.organisation.name}"
            + hook
        )


@apikey.command("set-webhook")
@click.argument("key_id", type=int)
@click.argument("url", required=False)
@click.option("--none", "no_webhook", is_flag=True, help="Take the key's webhook away.")
def apikey_set_webhook(key_id: int, url: str | None, no_webhook: bool) -> None:
    """Send the clinic's events to URL (https), signed; turns a webhook that answered 410 on
    again. A key without a signing secret gets one, printed once; one that has a secret keeps
    it (`apikey rotate-secret` changes it). --none takes the webhook and its secret away.

    \b
    Example:
        python -m bot apikey set-webhook 3 https://callsystem.example.no/sikkerhetsnett
        python -m bot apikey set-webhook 3 --none
    """
    from bot.netguard import Refused
    from bot.services import webhooks

    if (url is None) == (not no_webhook):
        raise click.UsageError("Give either URL or --none.")
    settings = _settings()
    rt = _runtime(settings)

    async def go() -> str | bool | None:
        try:
            if url is None:
                return await webhooks.remove_webhook(rt.sessions, key_id)
            _key, secret = await webhooks.set_webhook(rt.sessions, settings, key_id, url)
            return secret
        finally:
            await rt.engine.dispose()

    try:
        result = asyncio.run(go())
    except Refused as exc:
        _fail(f"URL: {exc}.")
    except LookupError:
        _fail(f"There is no active API key {key_id}; see `python -m bot apikey list`.", 1)
    if url is None:
        if result is False:
            _fail(f"API key {key_id} has no webhook.", 1)
        click.echo(f"API key {key_id} has no webhook now; nothing more is sent.")
        return
    click.echo(f"API key {key_id} sends its events to the webhook now.")
    if isinstance(result, str):
        click.echo(
            f"Signing secret (shown only now; check each request's {HEADER}):\n\n    {result}\n"
        )
    else:
        click.echo("It keeps its signing secret (`apikey rotate-secret` makes a new one).")


@apikey.command("rotate-secret")
@click.argument("key_id", type=int)
@click.option(
    "--grace-hours",
    type=click.IntRange(0, 168),
    default=24,
    show_default=True,
    help="How long the old secret still signs too (a second v1); 0: stop using it at once.",
)
def apikey_rotate_secret(key_id: int, grace_hours: int) -> None:
    """Make a new webhook signing secret and print it once. For --grace-hours every request
    carries two v1 signatures, the new secret's and the old one's, so the receiver can switch
    to the new secret when it is ready.

    \b
    Example:
        python -m bot apikey rotate-secret 3
    """
    import datetime as dt

    from bot.services import webhooks

    settings = _settings()
    rt = _runtime(settings)

    async def go() -> tuple[str, Any]:
        try:
            return await webhooks.rotate_secret(
                rt.sessions, settings, key_id, grace=dt.timedelta(hours=grace_hours)
            )
        finally:
            await rt.engine.dispose()

    try:
        secret, until = asyncio.run(go())
    except LookupError:
        _fail(f"API key {key_id} has no webhook; see `python -m bot apikey list`.", 1)
    click.echo(f"New signing secret for API key {key_id} (shown only now):\n\n    {secret}\n")
    if until is not None:
        click.echo(
            f"Until {until.isoformat(timespec='minutes')} each request is signed with the old "
            "secret too (two v1 values): switch the receiver to the new one before then."
        )
    else:
        click.echo("The old secret no longer signs anything.")


@apikey.command("revoke")
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int) -> None:
    """Stop an API key from working, at once (KEY_ID from `apikey list`).

    \b
    Example:
        python -m bot apikey revoke 3
    """
    from bot.services import apikeys

    rt = _runtime(_settings())

    async def go() -> bool:
        try:
            return await apikeys.revoke(rt.sessions, key_id)
        finally:
            await rt.engine.dispose()

    if not asyncio.run(go()):
        _fail(f"There is no active API key {key_id}; see `python -m bot apikey list`.", 1)
    click.echo(f"API key {key_id} revoked.")


@main.group()
def org() -> None:
    """Clinics and other organisations: which share re-contacts (a region)."""


@org.command("list")
def org_list() -> None:
    """List organisations: name, region, and how many live API keys each has.

    \b
    Example:
        python -m bot org list
    """
    from bot.services import apikeys

    rt = _runtime(_settings())

    async def fetch() -> list[Any]:
        try:
            return await apikeys.organisations(rt.sessions)
        finally:
            await rt.engine.dispose()

    found = asyncio.run(fetch())
    if not found:
        click.echo("No organisations yet; `apikey create --org …` or `invite create` makes one.")
    for organisation, keys in found:
        region = f"region {organisation.region}" if organisation.region else "no region"
        shown = apikeys.shown_name(organisation)
        sms = f"  (SMS: {shown})" if shown and shown != organisation.name else ""
        click.echo(f"{organisation.id:>4}  {region:<30} {keys} key(s)  {organisation.name}{sms}")


@org.command("region")
@click.option("--org", "org_name", required=True, help="The clinic.")
@click.option("--region", default=None, help="The region's name; clinics in it share.")
@click.option("--none", "no_region", is_flag=True, help="Take the clinic out of its region.")
def org_region(org_name: str, region: str | None, no_region: bool) -> None:
    """Put a clinic in a region: the re-contact look-ups of every clinic in a region see each
    other's dispatches (a legevakt and those it shares callers with). Without a region a clinic
    sees only its own.

    \b
    Example:
        python -m bot org region --org "Legevakten i Bergen" --region "Bergen og omland"
        python -m bot org region --org "Askøy legevakt" --none
    """
    from bot.services import apikeys

    if (region is None or not region.strip()) == (not no_region):
        raise click.UsageError("Give either --region NAME or --none.")
    rt = _runtime(_settings())

    async def go() -> Any:
        try:
            return await apikeys.set_region(rt.sessions, org_name, None if no_region else region)
        finally:
            await rt.engine.dispose()

    try:
        changed = asyncio.run(go())
    except LookupError:
        _fail(f"There is no organisation '{org_name.strip()}'; see `python -m bot org list`.", 1)
    if changed.region:
        click.echo(f"{changed.name} is in region {changed.region}.")
    else:
        click.echo(f"{changed.name} is in no region: it sees only its own dispatches.")


@org.command("name")
@click.option("--org", "org_name", required=True, help="The clinic.")
@click.option("--display-name", default=None, help="Its name as callers read it (≤ 32).")
@click.option("--none", "no_name", is_flag=True, help="Use the clinic's own name again.")
def org_name(org_name: str, display_name: str | None, no_name: bool) -> None:
    """Set the clinic's name as callers read it: the SMS says the advice is from it, and the
    advice page shows it. At most 32 characters an SMS can carry. Without one, the clinic's own
    name is used if it fits, else "the legevakt".

    \b
    Example:
        python -m bot org name --org "Legevakten i Bergen kommune" --display-name "Bergen legevakt"
    """
    from bot.services import apikeys

    if (display_name is None or not display_name.strip()) == (not no_name):
        raise click.UsageError("Give either --display-name NAME or --none.")
    rt = _runtime(_settings())

    async def go() -> Any:
        try:
            return await apikeys.set_display_name(
                rt.sessions, org_name, None if no_name else display_name
            )
        finally:
            await rt.engine.dispose()

    try:
        changed = asyncio.run(go())
    except LookupError:
        _fail(f"There is no organisation '{org_name.strip()}'; see `python -m bot org list`.", 1)
    except ValueError as exc:
        _fail(f"--display-name: {exc}.")
    shown = apikeys.shown_name(changed)
    if shown:
        click.echo(f"The SMS and the advice page say the advice is from: {shown}")
    else:
        click.echo(f"{changed.name} does not fit an SMS: the SMS says it is from the legevakt.")


@main.group()
def keys() -> None:
    """The encryption keys (derived from SECRET_KEY)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt everything stored encrypted with the current SECRET_KEY.

    \b
    To change SECRET_KEY:
      1. set SECRET_KEY to a new value, and SECRET_KEY_FALLBACKS to the old one, on every
         instance, and restart them: everything stays readable;
      2. run this: notes and risk groups, leaders' answers, queued SMS, kept API answers and
         webhook signing secrets are re-encrypted with the new key;
      3. keep the old key in SECRET_KEY_FALLBACKS for RETENTION_DAYS more: phone-number
         hashes cannot be re-keyed, and re-contacts find older dispatches only with it.

    \b
    Example:
        SECRET_KEY=<new> SECRET_KEY_FALLBACKS=<old> python -m bot keys rotate
    """
    from bot.services import keys as key_service

    settings = _settings()
    rt = _runtime(settings)

    async def go() -> list[Any]:
        try:
            return await key_service.rotate(rt)
        finally:
            await rt.engine.dispose()

    results = asyncio.run(go())
    for result in results:
        click.echo(
            f"{result.table:<30} re-encrypted {result.rotated:>6}   already current "
            f"{result.current:>6}   unreadable {result.unreadable:>6}"
        )
    unreadable = sum(r.unreadable for r in results)
    if unreadable:
        _fail(
            f"{unreadable} values were made with a key that is given neither as SECRET_KEY nor "
            "in SECRET_KEY_FALLBACKS; they were left as they are.",
            1,
        )
    if settings.secret_key_fallbacks:
        click.echo(
            f"Done. Keep SECRET_KEY_FALLBACKS for {settings.retention_days} more days (the "
            "phone-number hashes of earlier dispatches), then remove it."
        )
    else:
        click.echo("Done.")


@main.group("audit")
def audit_group() -> None:
    """The audit log of re-contact look-ups."""


@audit_group.command("list")
@click.option("--since", default="7d", show_default=True, help="How far back: 90m, 12h, 30d, 2w.")
@click.option("--phone", default=None, help="Only look-ups of this number.")
@click.option("--key", "key_id", type=int, default=None, help="Only look-ups by this API key.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def audit_list(since: str, phone: str | None, key_id: int | None, limit: int, fmt: str) -> None:
    """Who looked up which number (as its keyed hash), when, and how many dispatches they saw,
    newest first.

    \b
    Example:
        python -m bot audit list --since 24h
        python -m bot audit list --phone +4791234567 --since 30d
    """
    import datetime as dt

    from bot.models import utcnow
    from bot.privacy import PhoneError, normalise_phone, phone_hash
    from bot.services import audit
    from bot.services.invites import parse_duration

    settings = _settings()
    try:
        back = parse_duration(since)
    except ValueError as exc:
        _fail(f"--since: {exc}")
    hashes = None
    if phone is not None:
        try:
            e164 = normalise_phone(phone)
        except PhoneError as exc:
            _fail(f"--phone: {exc}")
        hashes = [phone_hash(secret, e164) for secret in settings.secrets()]
    rt = _runtime(settings)

    async def fetch() -> list[Any]:
        try:
            return await audit.entries(
                rt.sessions,
                since=utcnow() - back,
                phone_hashes=hashes,
                api_key_id=key_id,
                limit=limit,
            )
        finally:
            await rt.engine.dispose()

    rows = asyncio.run(fetch())
    if fmt == "json":
        listing = [
            {
                "at": row.created_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                "actor": row.actor,
                "api_key_id": row.api_key_id,
                "organisation_id": row.organisation_id,
                "phone_hash": row.phone_hash,
                "hours": row.hours,
                "results": row.results,
            }
            for row in rows
        ]
        click.echo(json.dumps(listing, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"No re-contact look-ups in the last {since}.")
    for row in rows:
        at = row.created_at.astimezone(settings.zone).isoformat(sep=" ", timespec="seconds")
        click.echo(
            f"{at}  {row.actor:<40} number {row.phone_hash[:12]}…  "
            f"last {row.hours} h: {row.results} dispatch(es)"
        )


async def _organisation_id(rt: Any, name: str) -> int:
    """The organisation called ``name``, made if new (as `invite create` does)."""
    from bot.models import Organisation
    from bot.services.invites import find_organisation, normalise_org_name

    async with rt.sessions() as session:
        found = await find_organisation(session, name)
        if found is None:
            found = Organisation(name=normalise_org_name(name)[:200])
            session.add(found)
            await session.commit()
            await session.refresh(found)
    assert found.id is not None
    return found.id


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown user"


def _bot_username(settings: Settings) -> str:
    """The bot's username for deep links: configured, the demo's, or asked from Telegram."""
    if settings.bot_username:
        return settings.bot_username
    if settings.demo:
        from bot.config import DEMO_BOT_USERNAME

        return DEMO_BOT_USERNAME
    from telegram import Bot
    from telegram.error import TelegramError

    from bot.config import TELEGRAM_API_BASE_URL

    assert settings.telegram_bot_token is not None
    token = settings.telegram_bot_token.get_secret_value()

    async def ask() -> str:
        bot = Bot(
            token,
            base_url=settings.telegram_api_base_url or TELEGRAM_API_BASE_URL,
        )
        async with bot:
            return bot.username

    try:
        return asyncio.run(ask())
    except TelegramError:
        _fail("Could not ask Telegram for the bot's name; set BOT_USERNAME.", 1)


@main.group()
def dispatch() -> None:
    """Advice after a call: create a dispatch, look up re-contacts."""


@dispatch.command("create")
@click.option("--topic", required=True, help="Advice topic id (see `content list`).")
@click.option("--locale", type=click.Choice(["nb", "nn"]), required=True, help="Language.")
@click.option("--note", default=None, help="The nurse's note to the caller (max 500 characters).")
@click.option("--checkin-hours", type=int, default=None, help="Ask how it goes after N hours.")
@click.option("--phone", default=None, help="The caller's number (stored only as a keyed hash).")
@click.option("--risk", "risk", multiple=True, help="A risk group of the topic; repeatable.")
@click.option("--send-sms", is_flag=True, help="Queue the SMS with the link to --phone.")
@click.option(
    "--org", "org", default=None, help="The clinic it is from (made if new), as an API key's."
)
def dispatch_create(
    topic: str,
    locale: str,
    note: str | None,
    checkin_hours: int | None,
    phone: str | None,
    risk: tuple[str, ...],
    send_sms: bool,
    org: str | None,
) -> None:
    """Create advice for one caller; print the same JSON as POST /api/v1/dispatches.

    Exits 1 if the input is not valid: each problem as a sentence on stderr, and the field
    errors as JSON on stdout, as the API answers them. Nothing is stored then.

    \b
    Example:
        python -m bot dispatch create --topic fever-child --locale nn \\
            --checkin-hours 6 --risk infant-under-3-months --phone +4791234567
    """
    from bot.services import dispatches

    settings = _settings()
    rt = _runtime(settings)
    rt.bot_username = _bot_username(settings)
    request: dict[str, Any] = {"topic": topic, "locale": locale, "risk_groups": list(risk)}
    request.update(note=note, checkin_hours=checkin_hours, phone=phone, send_sms=send_sms)

    async def go() -> dict[str, Any]:
        try:
            valid = dispatches.validate(request, rt)
            organisation_id = None
            if org is not None and org.strip():
                organisation_id = await _organisation_id(rt, org)
            return (await dispatches.create(rt, valid, organisation_id=organisation_id)).as_json()
        finally:
            await rt.engine.dispose()

    try:
        result = asyncio.run(go())
    except dispatches.InvalidRequest as exc:
        click.echo("The dispatch was not created:", err=True)
        for name, message in exc.fields.items():
            click.echo(f"  --{name.replace('_', '-')}: {message}", err=True)
        error = {"error": "invalid", "message": "the dispatch was not created"}
        click.echo(json.dumps({**error, "fields": exc.fields}, ensure_ascii=False, indent=2))
        sys.exit(1)
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@dispatch.command("recontacts")
@click.option("--phone", required=True, help="The caller's number.")
@click.option("--hours", type=click.IntRange(1, 720), default=None, help="Look back N hours.")
def dispatch_recontacts(phone: str, hours: int | None) -> None:
    """Print earlier dispatches for a number, as POST /api/v1/recontacts does.

    \b
    Example:
        python -m bot dispatch recontacts --phone +4791234567 --hours 72
    """
    from bot.privacy import PhoneError, normalise_phone
    from bot.services import audit, dispatches

    settings = _settings()
    try:
        e164 = normalise_phone(phone)
    except PhoneError as exc:
        _fail(f"--phone: {exc}")
    rt = _runtime(settings)
    window = hours or settings.recontact_hours

    async def go() -> list[dict[str, Any]]:
        try:
            # An admin on the server sees every clinic's dispatches; the look-up is audited.
            asker = audit.Asker(actor=f"command line ({_os_user()})")
            found = await dispatches.recontacts(rt, e164, window, asker)
            return [dispatches.recontact_json(d, rt) for d in found]
        finally:
            await rt.engine.dispose()

    found = asyncio.run(go())
    result = {"recontact": bool(found), "hours": window, "dispatches": found}
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


# --- invites and reports for the weekly reflection ------------------------------------------


@main.group()
def invite() -> None:
    """Invite links: leaders of an organisation to the weekly reflection, or its staff to
    #Råbra."""


@invite.command("create")
@click.option("--org", "org", required=True, help="The organisation; made if it is new.")
@click.option("--role", "role", default=None, help="Leader role id (see `content list`).")
@click.option(
    "--kind",
    type=click.Choice(["leader", "raabra"]),
    default="leader",
    show_default=True,
    help="leader: the weekly reflection, in --role; raabra: staff send #Råbra stories only.",
)
@click.option("--uses", type=int, default=1, show_default=True, help="How many people (1-1000).")
@click.option(
    "--expires",
    default=None,
    help="How long the link works: 90m, 12h, 30d, 2w  [default: INVITE_DAYS]",
)
def invite_create(org: str, role: str | None, kind: str, uses: int, expires: str | None) -> None:
    """Make an invite link and print it as JSON. Only a hash is stored: the link is shown once.

    Exits 1 with the field errors as JSON if the input is not valid; nothing is stored then.

    \b
    Example:
        python -m bot invite create --org "Legevakten i Bergen" --role legevakt-leader \\
            --uses 10 --expires 2w
        python -m bot invite create --org "Legevakten i Bergen" --kind raabra --uses 40
    """
    from bot.services import invites

    settings = _settings()
    rt = _runtime(settings)
    rt.bot_username = _bot_username(settings)

    async def go() -> dict[str, Any]:
        try:
            created = await invites.create(rt, org, role, uses=uses, expires=expires, kind=kind)
            return created.as_json()
        finally:
            await rt.engine.dispose()

    try:
        result = asyncio.run(go())
    except invites.InvalidInvite as exc:
        error = {"error": "invalid", "message": "the invite was not created"}
        click.echo(json.dumps({**error, "fields": exc.fields}, ensure_ascii=False, indent=2))
        sys.exit(1)
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@invite.command("list")
@click.option("--org", "org", default=None, help="Only this organisation's invites.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def invite_list(org: str | None, fmt: str) -> None:
    """List invites (never the links): id, state, uses, expiry, organisation and role.

    \b
    Example:
        python -m bot invite list --org "Legevakten i Bergen"
    """
    from bot.services import invites

    rt = _runtime(_settings())

    async def fetch() -> list[Any]:
        try:
            return await invites.list_invites(rt, org)
        finally:
            await rt.engine.dispose()

    found = asyncio.run(fetch())
    if fmt == "json":
        click.echo(json.dumps([i.as_json() for i in found], ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("No invites" + (f" for '{org}'." if org else " yet."))
    for info in found:
        row = info.invite
        expires = row.expires_at.isoformat(timespec="minutes")
        click.echo(
            f"{row.id:>4}  {info.state():<8} used {row.uses}/{row.max_uses:<4} "
            f"expires {expires:<17} {info.organisation.name} — {row.role_id or '#Råbra'}"
        )


@invite.command("revoke")
@click.argument("invite_id", type=int)
def invite_revoke(invite_id: int) -> None:
    """Stop an invite link from working, at once (INVITE_ID from `invite list`).

    Leaders who already joined with it stay enrolled.

    \b
    Example:
        python -m bot invite revoke 3
    """
    from bot.services import invites

    rt = _runtime(_settings())

    async def go() -> bool:
        try:
            return await invites.revoke(rt, invite_id)
        finally:
            await rt.engine.dispose()

    if not asyncio.run(go()):
        _fail(f"There is no active invite {invite_id}; see `python -m bot invite list`.", 1)
    click.echo(f"Invite {invite_id} revoked.")


# --- leader groups ---------------------------------------------------------------------------


@main.group()
def group() -> None:
    """Telegram groups where leaders discuss the week's question (linked with a link)."""


@group.command("link")
@click.option("--org", "org", required=True, help="The organisation; made if it is new.")
@click.option("--role", "role", default=None, help="Only this role's leaders (and questions).")
@click.option(
    "--programme", default=None, help="For a group of every role: the programme whose themes."
)
@click.option(
    "--weekday", default="mon", show_default=True, help="Day of the question: mon … sun, 1-7."
)
@click.option("--time", "time_", default="09:00", show_default=True, help="Time of day, HH:MM.")
@click.option(
    "--language",
    type=click.Choice(["nb", "nn"]),
    default=None,
    help="The group's language  [default: DEFAULT_LOCALE]",
)
@click.option(
    "--expires", default=None, help="How long the link works: 12h, 7d, 2w  [default: INVITE_DAYS]"
)
def group_link(
    org: str,
    role: str | None,
    programme: str | None,
    weekday: str,
    time_: str,
    language: str | None,
    expires: str | None,
) -> None:
    """Make a link that adds the bot to a Telegram group and links the group, and print it as
    JSON. Single use; only a hash is stored, so the link is shown once.

    Send the link to someone in the group who may add members; opening it lets them pick the
    group. Every week on WEEKDAY at TIME (the bot's time zone) the bot posts the week's
    question there for discussion: the role's questions in order with --role, otherwise one
    theme of the programme a week with every role's questions. The bot needs no admin rights
    and never reads the discussion.

    \b
    Example:
        python -m bot group link --org "Helse Vest HF" --role unit-leader \\
            --weekday tue --time 08:30 --language nn
    """
    from bot.services import groups

    settings = _settings()
    rt = _runtime(settings)

    async def go() -> dict[str, Any]:
        try:
            created = await groups.create_link(
                rt,
                org,
                role_id=role,
                programme_id=programme,
                weekday=weekday,
                minute_of_day=time_,
                locale=language,
                expires=expires,
            )
            return created.as_json()
        finally:
            await rt.engine.dispose()

    rt.bot_username = _bot_username(settings)
    try:
        result = asyncio.run(go())
    except groups.InvalidGroupLink as exc:
        error = {"error": "invalid", "message": "the link was not made"}
        click.echo(json.dumps({**error, "fields": exc.fields}, ensure_ascii=False, indent=2))
        sys.exit(1)
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@group.command("list")
@click.option("--org", "org", default=None, help="Only this organisation's groups.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def group_list(org: str | None, fmt: str) -> None:
    """List linked groups: id, title, organisation, role, day and time, the next question.

    \b
    Example:
        python -m bot group list --org "Helse Vest HF"
    """
    from bot.services import groups

    rt = _runtime(_settings())

    async def fetch() -> list[Any]:
        try:
            return await groups.list_groups(rt, org)
        finally:
            await rt.engine.dispose()

    found = asyncio.run(fetch())
    if fmt == "json":
        click.echo(json.dumps([g.as_json() for g in found], ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("No linked groups" + (f" for '{org}'." if org else " yet."))
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    for info in found:
        row = info.group
        who = info.organisation.name + (f" — {row.role_id}" if row.role_id else " — every role")
        when = f"{days[row.weekday]} {groups.hhmm(row.minute_of_day)}"
        following = row.next_due_at.isoformat(timespec="minutes") if row.next_due_at else "-"
        click.echo(f"{row.id:>4}  {row.title or '-':<30} {who}  {when}  next {following}")


@group.command("unlink")
@click.argument("group_id", type=int)
def group_unlink(group_id: int) -> None:
    """Stop posting to a group (GROUP_ID from `group list`), at once; what was queued for it
    is dropped. The bot stays a member until someone removes it from the group.

    \b
    Example:
        python -m bot group unlink 2
    """
    from bot.services import groups

    rt = _runtime(_settings())

    async def go() -> Any:
        try:
            return await groups.unlink(rt, group_id)
        finally:
            await rt.engine.dispose()

    gone = asyncio.run(go())
    if gone is None:
        _fail(f"There is no linked group {group_id}; see `python -m bot group list`.", 1)
    click.echo(
        f"Group {group_id} ({gone.title or 'untitled'}) unlinked: nothing more is posted there. "
        "Remove the bot from the group in Telegram as well."
    )


@main.group()
def report() -> None:
    """Reports for admins: participation in the weekly reflection (counts only), and #Råbra."""


@report.command("participation")
@click.option("--org", "org", required=True, help="The organisation.")
@click.option(
    "--weeks", type=click.IntRange(1, 520), default=8, show_default=True, help="Last N ISO weeks."
)
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text")
def report_participation(org: str, weeks: int, fmt: str) -> None:
    """Participation per week, role and theme, and the answers leaders chose to share.

    Groups with fewer than REPORT_MIN_GROUP leaders (default 5) show no counts, so no one's
    participation can be singled out. Unshared answers are never shown. The CSV holds the counts
    only.

    \b
    Example:
        python -m bot report participation --org "Legevakten i Bergen" --weeks 12
        python -m bot report participation --org "Legevakten i Bergen" --format csv > report.csv
    """
    from bot.services import reports

    rt = _runtime(_settings())

    async def go() -> Any:
        try:
            return await reports.participation(rt, org, weeks)
        finally:
            await rt.engine.dispose()

    try:
        result = asyncio.run(go())
    except LookupError as exc:
        _fail(str(exc.args[0]), 1)
    if fmt == "json":
        click.echo(json.dumps(reports.as_json(result), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(reports.as_csv(result), nl=False)
    else:
        click.echo(reports.as_text(result), nl=False)


@report.command("raabra")
@click.option("--org", "org", required=True, help="The organisation.")
@click.option(
    "--months",
    type=click.IntRange(1, 120),
    default=1,
    show_default=True,
    help="Last N whole months (the month going on is not included).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text")
def report_raabra(org: str, months: int, fmt: str) -> None:
    """The #Råbra stories shared with the organisation, and their counts by theme, per month.

    As the leaders' monthly digest shows them: named stories with the name; anonymous ones only
    in a month when at least REPORT_MIN_GROUP people (default 5) shared anonymously, otherwise
    not shown or counted. Private stories are never shown. The CSV has one row per story.

    \b
    Example:
        python -m bot report raabra --org "Legevakten i Bergen"
        python -m bot report raabra --org "Legevakten i Bergen" --months 12 --format csv
    """
    from bot.services import raabra

    rt = _runtime(_settings())

    async def go() -> Any:
        try:
            return await raabra.report(rt, org, months)
        finally:
            await rt.engine.dispose()

    try:
        result = asyncio.run(go())
    except LookupError as exc:
        _fail(str(exc.args[0]), 1)
    content = rt.content.raabra
    if fmt == "json":
        click.echo(json.dumps(raabra.as_json(result, content), ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(raabra.as_csv(result, content), nl=False)
    else:
        click.echo(raabra.as_text(result, content), nl=False)
