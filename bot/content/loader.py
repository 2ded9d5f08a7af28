"""Read the content folder into validated models, keeping each field's line number.

Errors are collected for every file and reported as ``file:line: field: plain sentence`` so an
admin who is not a programmer can fix them. Nothing here touches Telegram, the database or gettext.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.content.schema import (
    AdviceTopic,
    Path,
    Programme,
    Raabra,
    Role,
    Threshold,
    Thresholds,
    translatable_strings,
)

KINDS: dict[str, type[AdviceTopic] | type[Programme]] = {
    "advice": AdviceTopic,
    "reflection": Programme,
}

# Single files beside the folders, each one kind of its own: kind -> (file name, model).
FILES: dict[str, tuple[str, type[Raabra]]] = {
    "raabra": ("raabra.yaml", Raabra),
}

M = TypeVar("M", bound=BaseModel)

THRESHOLDS_FILE = "thresholds.yaml"  # beside advice/ and reflection/
# Where a shared threshold goes in a text: "{fever}". Ids as everywhere: lowercase and hyphens.
PLACEHOLDER = re.compile(r"\{([a-z0-9][a-z0-9-]{0,39})\}")
# Fields that the API and the nurse's lists show untranslated: no threshold in them.
_NO_PLACEHOLDERS = ("title", "label")


@dataclass(frozen=True)
class ContentError:
    """One problem in a content file, precise enough to find and fix by hand."""

    file: str
    line: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ContentErrors(Exception):
    """Raised when content cannot be loaded; carries every error found, not just the first."""

    def __init__(self, errors: list[ContentError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class SourceFile:
    """Where a content item came from, and the line of each field in it."""

    path: FsPath
    display: str  # the path as shown to admins, relative to the project
    lines: dict[Path, int]

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest parent that has one."""
        return nearest_line(self.lines, path)


@dataclass(frozen=True)
class ContentBundle:
    """All content, validated: advice topics and reflection programmes by id."""

    root: FsPath
    advice: dict[str, AdviceTopic]
    programmes: dict[str, Programme]
    sources: dict[tuple[str, str], SourceFile] = field(repr=False)
    digest: str = ""  # a short hash of every file: which content version is live
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    thresholds_source: SourceFile | None = field(default=None, repr=False)
    raabra: Raabra | None = None  # content/raabra.yaml; None where the folder has none

    @property
    def values(self) -> dict[str, str]:
        """Each shared threshold's id and its number as text, for ``localize``."""
        return {t.id: t.text for t in self.thresholds.values()}

    @property
    def roles(self) -> dict[str, tuple[Programme, Role]]:
        """Every leader role, with the programme that defines it."""
        return {r.id: (p, r) for p in self.programmes.values() for r in p.roles}

    def source(self, kind: str, content_id: str) -> SourceFile:
        return self.sources[(kind, content_id)]


def msgctxt(kind: str, content_id: str, key: str) -> str:
    """The gettext context of one content string: ``advice/fever-child:worsening_signs[x].sign``."""
    return f"{kind}/{content_id}:{key}"


def localize(
    model: M,
    kind: str,
    lookup: Callable[[str, str], str | None],
    values: Mapping[str, str] | None = None,
) -> M:
    """A copy of ``model`` with every user-visible string replaced by ``lookup(ctx, text)``,
    and each ``{threshold}`` in it by its number from ``values``.

    Strings the lookup has no translation for (it returns None) keep their source text.
    """
    content_id = getattr(model, "id", "")
    data = model.model_dump()
    for ref in translatable_strings(model):
        translated = lookup(msgctxt(kind, content_id, ref.key), ref.text)
        text = ref.text if translated is None else translated
        if values:
            text = fill_thresholds(text, values)
        if text != ref.text:
            _set(data, ref.path, text)
    return type(model).model_validate(data)


def fill_thresholds(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{id}`` of a known threshold replaced by its number."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _set(data: Any, path: Path, value: str) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


# --- reading -------------------------------------------------------------------------------


def load_content(root: FsPath, display_root: FsPath | None = None) -> ContentBundle:
    """Load and validate every content file under ``root``; raise ContentErrors listing all."""
    display_base = display_root or root.parent
    errors: list[ContentError] = []
    models: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    sources: dict[tuple[str, str], SourceFile] = {}
    digest = hashlib.sha256()

    if not root.is_dir():
        raise ContentErrors([ContentError(str(root), 1, "", "the content folder does not exist")])
    for kind, model_type in KINDS.items():
        folder = root / kind
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            display = _display(path, display_base)
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.suffix != ".yaml":
                errors.append(ContentError(display, 1, "", _wrong_suffix(path)))
                continue
            raw = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + raw)
            try:
                model, lines = parse_file(raw.decode("utf-8"), display, model_type)
            except ContentErrors as exc:
                errors.extend(exc.errors)
                continue
            except UnicodeDecodeError:
                errors.append(ContentError(display, 1, "", "the file is not saved as UTF-8 text"))
                continue
            if model.id != path.stem:
                errors.append(
                    ContentError(
                        display,
                        lines.get(("id",), 1),
                        "id",
                        f"the id '{model.id}' must match the file name '{path.stem}.yaml'",
                    )
                )
                continue
            source = SourceFile(path, display, lines)
            other = sources.get((kind, model.id))
            if other is not None:
                errors.append(
                    ContentError(
                        display, 1, "id", f"the id '{model.id}' is also used by {other.display}"
                    )
                )
                continue
            models[kind][model.id] = model
            sources[(kind, model.id)] = source

    errors.extend(_check_role_ids(models["reflection"].values(), sources))
    thresholds, thresholds_source = _load_thresholds(root, display_base, digest, errors)
    errors.extend(_check_placeholders(models["advice"].values(), sources, thresholds))
    raabra = _load_single(root, "raabra", display_base, digest, sources, errors)
    if errors:
        raise ContentErrors(errors)
    return ContentBundle(
        root=root,
        advice=models["advice"],
        programmes=models["reflection"],
        sources=sources,
        digest=digest.hexdigest()[:12],
        thresholds=thresholds,
        thresholds_source=thresholds_source,
        raabra=raabra,
    )


def _load_single(
    root: FsPath,
    kind: str,
    display_base: FsPath,
    digest: Any,
    sources: dict[tuple[str, str], SourceFile],
    errors: list[ContentError],
) -> Any:
    """One of ``FILES`` (e.g. ``content/raabra.yaml``), validated; None if the folder has none.

    Its id must be its kind (the file's name), as each file under a kind's folder is named by
    its id; its strings are translated like the rest (msgctxt ``raabra/raabra:…``).
    """
    name, model_type = FILES[kind]
    path = root / name
    if not path.is_file():
        return None
    display = _display(path, display_base)
    raw = path.read_bytes()
    digest.update(path.name.encode() + b"\0" + raw)
    try:
        model, lines = parse_file(raw.decode("utf-8"), display, model_type)
    except ContentErrors as exc:
        errors.extend(exc.errors)
        return None
    except UnicodeDecodeError:
        errors.append(ContentError(display, 1, "", "the file is not saved as UTF-8 text"))
        return None
    if model.id != kind:
        errors.append(
            ContentError(
                display, lines.get(("id",), 1), "id", f"the id must be '{kind}', as the file's name"
            )
        )
        return None
    sources[(kind, model.id)] = SourceFile(path, display, lines)
    return model


def _load_thresholds(
    root: FsPath, display_base: FsPath, digest: Any, errors: list[ContentError]
) -> tuple[dict[str, Threshold], SourceFile | None]:
    """``content/thresholds.yaml``, if there is one (a folder without it has none to share)."""
    path = root / THRESHOLDS_FILE
    if not path.is_file():
        return {}, None
    display = _display(path, display_base)
    raw = path.read_bytes()
    digest.update(path.name.encode() + b"\0" + raw)
    try:
        model, lines = parse_file(raw.decode("utf-8"), display, Thresholds)
    except ContentErrors as exc:
        errors.extend(exc.errors)
        return {}, None
    except UnicodeDecodeError:
        errors.append(ContentError(display, 1, "", "the file is not saved as UTF-8 text"))
        return {}, None
    return {t.id: t for t in model.thresholds}, SourceFile(path, display, lines)


def _check_placeholders(
    topics: Iterable[AdviceTopic],
    sources: dict[tuple[str, str], SourceFile],
    thresholds: dict[str, Threshold],
) -> list[ContentError]:
    """Every ``{name}`` in a topic names a shared threshold, and none is in a title or label."""
    errors: list[ContentError] = []
    for topic in topics:
        source = sources[("advice", topic.id)]
        for ref in translatable_strings(topic):
            for match in PLACEHOLDER.finditer(ref.text):
                name = match.group(1)
                line = source.line_of(ref.path)
                if ref.path[-1] in _NO_PLACEHOLDERS:
                    errors.append(
                        ContentError(
                            source.display,
                            line,
                            ref.key,
                            f"{{{name}}} cannot stand in a {ref.path[-1]}, which lists show "
                            "as written; write the number there",
                        )
                    )
                elif name not in thresholds:
                    known = ", ".join(sorted(thresholds)) or "none"
                    errors.append(
                        ContentError(
                            source.display,
                            line,
                            ref.key,
                            f"{{{name}}} is not a threshold in content/{THRESHOLDS_FILE} "
                            f"(thresholds: {known})",
                        )
                    )
    return errors


def _check_role_ids(
    programmes: Iterable[Programme], sources: dict[tuple[str, str], SourceFile]
) -> list[ContentError]:
    errors: list[ContentError] = []
    owner: dict[str, str] = {}
    for programme in programmes:
        source = sources[("reflection", programme.id)]
        for index, role in enumerate(programme.roles):
            if role.id in owner:
                errors.append(
                    ContentError(
                        source.display,
                        source.line_of(("roles", index, "id")),
                        f"roles[{index}].id",
                        f"the role id '{role.id}' is already defined in {owner[role.id]}; "
                        "role ids must be unique across programmes",
                    )
                )
            else:
                owner[role.id] = source.display
    return errors


def parse_file(text: str, display: str, model_type: type[M]) -> tuple[M, dict[Path, int]]:
    """Parse one YAML document and validate it; errors carry file:line and field."""
    data, lines = parse_yaml(text, display)
    if not isinstance(data, dict):
        raise ContentErrors(
            [ContentError(display, 1, "", "the file must be a list of fields (key: value)")]
        )
    try:
        return model_type.model_validate(data), lines
    except ValidationError as exc:
        raise ContentErrors(
            [_plain_error(display, lines, err) for err in exc.errors(include_url=False)]
        ) from None


# libyaml's loader where PyYAML has it (its wheels do): the same safe YAML and line marks, about
# ten times faster than the pure-Python one, which was most of the content's load at every start.
_SafeLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)


def parse_yaml(text: str, display: str) -> tuple[Any, dict[Path, int]]:
    """YAML to plain data plus the 1-based line of every key and list item; duplicate keys fail."""
    try:
        loader = _SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ContentErrors([ContentError(display, 1, "", "the file is empty")])
            lines: dict[Path, int] = {}
            _collect_lines(node, (), lines, display)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "unreadable"
        raise ContentErrors(
            [
                ContentError(
                    display,
                    line,
                    "",
                    f"this line cannot be read as YAML ({problem}); check indentation, "
                    "colons and quotes",
                )
            ]
        ) from None
    return data, lines


def _collect_lines(node: yaml.Node, path: Path, lines: dict[Path, int], display: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ContentErrors(
                    [
                        ContentError(
                            display,
                            line,
                            _field_name((*path, key)),
                            f"this field appears twice (first on line {seen[key]})",
                        )
                    ]
                )
            seen[key] = line
            lines[(*path, key)] = line
            _collect_lines(value_node, (*path, key), lines, display)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _collect_lines(item, (*path, index), lines, display)


def _field_name(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def nearest_line(lines: dict[Path, int], path: Path) -> int:
    """The line of ``path``, or of its nearest parent that has one (1 if none has)."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


TIER_HELP = (
    "'emergency' (life-threatening: call 113 now), 'urgent' (call the legevakt on 116 117 now) "
    "or 'soon' (a doctor today, or the GP on the next working day)"
)


def _plain_error(display: str, lines: dict[Path, int], err: Any) -> ContentError:
    loc: Path = tuple(step for step in err["loc"] if not (isinstance(step, str) and "[" in step))
    message = _plain_message(err)
    if loc and loc[-1] == "tier" and err["type"] == "literal_error":
        message = f"must be one of {TIER_HELP} (found {err.get('input')!r})"
    elif loc and loc[-1] == "action" and err["type"] == "extra_forbidden":
        message = f"'action' is now 'tier': write tier: with one of {TIER_HELP}"
    return ContentError(display, nearest_line(lines, loc), _field_name(loc), message)


def _plain_message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    found = err.get("input")
    if kind == "missing":
        return "this field is required but missing"
    if kind == "extra_forbidden":
        return "this is not a known field; check the spelling or remove it"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')} (found {found!r})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return (
            f"{found!r} is not a valid id: use up to 40 lowercase letters a-z, digits and "
            "hyphens, starting with a letter or digit"
        )
    if kind == "string_type":
        return (
            f"must be text (found {found!r}); put it in quotes if it looks like a number or yes/no"
        )
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    if kind in ("list_type",):
        return "must be a list, one item per line starting with '- '"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a group of fields (key: value), not a single value"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number (found {found!r})"
    if kind in ("greater_than_equal", "less_than_equal"):
        limit = ctx.get("ge", ctx.get("le"))
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {word} {limit} (found {found!r})"
    if kind.startswith("date"):
        return f"must be a date written as YYYY-MM-DD (found {found!r})"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false (found {found!r})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"])


def _wrong_suffix(path: FsPath) -> str:
    if path.suffix == ".yml":
        return "content files must end in .yaml, not .yml; rename the file"
    return "only .yaml files belong in this folder; move or remove this file"


def _display(path: FsPath, base: FsPath) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
