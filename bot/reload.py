"""Live reload of content and translations (SIGHUP, or /reload from an admin).

Everything is validated in full before anything changes: the content files, the content check
(translations, placeholders, lengths) and the catalogs, compiled fresh from the ``.po`` files an
admin edited. Only then are content and catalogs swapped into the runtime, whole and at once. On
any error the bot keeps serving what it had. Dispatches already made keep the advice they were
made with (``Dispatch.content``), so a reload never changes what a caller already has.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.content import ContentBundle, ContentErrors, load_content
from bot.content.check import check_content
from bot.i18n import DOMAINS, LOCALES, CatalogError, Catalogs
from bot.runtime import Runtime

log = logging.getLogger(__name__)

_lock = asyncio.Lock()  # one reload at a time


@dataclass
class ReloadResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    summary: str = ""


def compile_catalogs(locales_dir: Path, out_dir: Path) -> None:
    """Compile every ``.po`` under ``locales_dir`` to ``out_dir`` (fuzzy entries left out)."""
    for locale in LOCALES:
        for domain in DOMAINS:
            po = locales_dir / locale / "LC_MESSAGES" / f"{domain}.po"
            if not po.exists():
                continue
            with po.open("rb") as fp:
                catalog = read_po(fp, locale=locale, domain=domain)
            target = out_dir / locale / "LC_MESSAGES" / f"{domain}.mo"
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fp:
                write_mo(fp, catalog, use_fuzzy=False)


def _load(rt: Runtime) -> tuple[ReloadResult, ContentBundle | None, Catalogs | None]:
    settings = rt.settings
    try:
        content = load_content(settings.content_dir)
    except ContentErrors as exc:
        return ReloadResult(False, [str(e) for e in exc.errors]), None, None
    report = check_content(settings.content_dir, settings.locales_dir)
    if report.errors:
        return ReloadResult(False, [str(e) for e in report.errors]), None, None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            compile_catalogs(settings.locales_dir, Path(tmp))
            catalogs = Catalogs(Path(tmp))  # reads everything into memory
    except (CatalogError, OSError, ValueError) as exc:
        return ReloadResult(False, [f"the translations could not be compiled: {exc}"]), None, None
    try:
        # Keep the compiled files beside the sources, so a restart need not compile them again.
        # Only a cache: Catalogs compiles a newer .po itself, and an installed package's folder
        # may be read-only.
        compile_catalogs(settings.locales_dir, settings.locales_dir)
    except OSError:
        log.info("compiled catalogs not written beside the sources (read-only); not needed")
    summary = "content reloaded: " + ", ".join(
        f"{topic.id} v{topic.version}" for topic in sorted(content.advice.values(), key=_id)
    )
    if report.warnings:
        summary += f" ({len(report.warnings)} warning(s); run: python -m bot content check)"
    return ReloadResult(True, [], summary), content, catalogs


def _id(item: object) -> str:
    return str(getattr(item, "id", ""))


async def reload_content(rt: Runtime) -> ReloadResult:
    """Validate the content and translations on disk; swap them in only if all is well."""
    async with _lock:
        result, content, catalogs = await asyncio.to_thread(_load, rt)
        if content is not None and catalogs is not None:
            rt.content = content
            rt.catalogs = catalogs
            log.info("%s", result.summary)
        else:
            log.warning(
                "content reload refused: %d error(s); still serving the old content",
                len(result.errors),
            )
        return result


def result_text(result: ReloadResult, _: Callable[[str], str], limit: int = 20) -> str:
    """What an admin reads after a reload (plain text, at most ``limit`` errors listed)."""
    if result.ok:
        return _("Content and translations reloaded.") + "\n" + result.summary
    lines = [_("Nothing was reloaded: the bot still serves the content it had. Errors:")]
    lines += [f"• {error}" for error in result.errors[:limit]]
    if len(result.errors) > limit:
        lines.append(
            _("… and {count} more; run: python -m bot content check").format(
                count=len(result.errors) - limit
            )
        )
    return "\n".join(lines)[:4000]


async def reload_and_tell_admins(rt: Runtime) -> ReloadResult:
    """SIGHUP: reload, and tell every admin the outcome through the outbox."""
    from bot import outbox
    from bot.models import utcnow

    result = await reload_content(rt)
    _ = rt.catalogs.gettext(rt.settings.default_locale)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
    async with rt.sessions() as session:
        for admin in rt.settings.admin_user_ids:
            await outbox.enqueue(
                session,
                key=f"reload:{stamp}:{admin}",
                chat_id=admin,
                payload={"text": result_text(result, _)},
            )
        await session.commit()
    if rt.sender is not None:
        rt.sender.wake()
    return result
