"""What a leader group reads, as Telegram HTML: the week's question for discussion, and a
leader's shared answer (the same function writes the preview the leader confirms and the post).

Pure functions of localised content, a gettext function and plain values, like ``bot.render``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.content.schema import Programme, Question, Theme
from bot.render import esc

Gettext = Callable[[str], str]

ANSWER_MAX = 3000  # characters of a shared answer in one post: the preview around it fits 4096


def bold(text: str) -> str:
    return f"<b>{esc(text)}</b>"


def _question_block(question: Question, role: str | None = None) -> str:
    head = f"<b>{esc(question.text)}</b>"
    if role:
        head = f"<i>{esc(role)}:</i> {head}"
    if question.follow_ups:
        head += "\n" + "\n".join(f"• {esc(f.text)}" for f in question.follow_ups)
    return head


def group_question_text(
    programme: Programme,
    theme: Theme,
    question: Question | None,
    _: Gettext,
) -> str:
    """The week's question for discussion in a leader group, from localised content: a role's
    question, or (``question`` None) every role's questions of the theme."""
    parts = [bold(_("This week’s question for discussion"))]
    head = f"<b>{esc(theme.title)}</b>"
    if theme.intro:
        head += "\n" + esc(theme.intro)
    parts.append(head)
    if question is not None:
        parts.append(_question_block(question))
    else:
        roles: Mapping[str, str] = {role.id: role.title for role in programme.roles}
        parts.extend(_question_block(q, roles.get(q.role, q.role)) for q in theme.questions)
    if theme.prompt:
        parts.append(f"<i>{esc(theme.prompt)}</i>")
    parts.append(
        esc(
            _(
                "Talk about it here in the group. I do not read or keep what you write here. "
                "Each of you can answer on your own in your chat with me, and share your answer "
                "here if you want to."
            )
        )
    )
    return "\n\n".join(parts)


def shortened(text: str, limit: int = ANSWER_MAX) -> str:
    """An answer cut to ``limit`` characters at a word, marked with " …"."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def group_answer_text(question: Question | None, name: str | None, text: str, _: Gettext) -> str:
    """A leader's answer as posted to the group (and as previewed to them first)."""
    if name:
        head = _("{name} shares their answer to the week’s question:").format(name=name)
    else:
        head = _("A leader shares their answer to the week’s question:")
    parts = [f"<b>{esc(head)}</b>"]
    if question is not None:
        parts.append(f"<i>{esc(question.text)}</i>")
    parts.append(esc(shortened(text)))
    return "\n\n".join(parts)
