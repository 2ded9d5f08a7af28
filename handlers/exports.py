"""/export: a leader's own answers as a file, with full dates (the year too), as Markdown to
read or as CSV for a spreadsheet (``/export csv``, or the button under the Markdown file).

The CSV is UTF-8 with a byte-order mark and semicolons, which is what a spreadsheet set to
Norwegian opens without asking; dates are ISO (2026-12-01), so they sort.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from telegram import Update

from bot import callbacks
from bot.i18n import format_full_day
from bot.models import Leader, Prompt
from bot.services import leaders
from handlers.base import Context, Turn, begin, keyboard, reply


def _rows(
    turn: Turn, leader: Leader, prompts: list[Prompt]
) -> list[tuple[dt.date, str, str, str, str, Prompt]]:
    """(local date, ISO week, theme, question, answer, prompt) for each answer, newest first."""
    from handlers.leader import question_text

    found = []
    zone = leaders.zone_of(leader)
    for prompt in prompts:
        theme, question = question_text(turn.rt, prompt, turn.locale)
        answer = leaders.answer_text(turn.rt, prompt)
        if answer is None:
            answer = turn.gettext("(This answer cannot be read: the encryption key has changed.)")
        day = prompt.due_at.astimezone(zone).date()
        found.append((day, prompt.week, theme, question, answer, prompt))
    return found


def as_markdown(turn: Turn, leader: Leader, prompts: list[Prompt]) -> bytes:
    _ = turn.gettext
    title = _("My answers in the weekly reflection")
    lines = [f"# {title}", ""]
    for day, _week, theme, question, answer, _prompt in _rows(turn, leader, prompts):
        lines += [f"## {format_full_day(day, turn.locale)}: {theme}", "", f"**{question}**", ""]
        lines += [answer, ""]
    return "\n".join(lines).encode()


def as_csv(turn: Turn, leader: Leader, prompts: list[Prompt]) -> bytes:
    _ = turn.gettext
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([_("Date"), _("Week"), _("Theme"), _("Question"), _("Answer"), _("Shared")])
    for day, week, theme, question, answer, prompt in _rows(turn, leader, prompts):
        shared = _("yes") if prompt.shared else _("no")
        writer.writerow([day.isoformat(), week, theme, question, answer, shared])
    return ("\ufeff" + out.getvalue()).encode()


async def export_command(update: Update, context: Context) -> None:
    """All of the leader's answers as a file: Markdown, or CSV with ``/export csv``."""
    turn = await begin(update, context)
    if turn is None:
        return
    wanted = (context.args or ["md"])[0].lower()
    await send_export(update, turn, "csv" if wanted == "csv" else "md")


async def export_button(update: Update, context: Context, pressed: callbacks.Export) -> None:
    """The answers again, in the format of the button pressed."""
    turn = await begin(update, context)
    if turn is None:
        return
    await send_export(update, turn, pressed.format)


async def send_export(update: Update, turn: Turn, fmt: callbacks.ExportFormat) -> None:
    from handlers.leader import not_a_leader

    _ = turn.gettext
    chat = update.effective_chat
    if chat is None:
        return
    leader = await leaders.leader_of(turn.rt, turn.person, stopped_too=True)
    if leader is None:
        await not_a_leader(update, turn)
        return
    prompts, total = await leaders.answers(turn.rt, leader)
    if not total:
        await reply(update, _("You have no saved answers yet."))
        return
    stamp = dt.date.today().isoformat()
    caption = _("Your answers, {count} in all.").format(count=total)
    if fmt == "csv":
        await chat.send_document(
            document=as_csv(turn, leader, prompts),
            filename=f"refleksjon-{stamp}.csv",
            caption=caption + " " + _("For a spreadsheet."),
        )
        return
    await chat.send_document(
        document=as_markdown(turn, leader, prompts),
        filename=f"refleksjon-{stamp}.md",
        caption=caption,
        reply_markup=keyboard([[(_("As CSV, for a spreadsheet"), callbacks.Export("csv"))]]),
    )
