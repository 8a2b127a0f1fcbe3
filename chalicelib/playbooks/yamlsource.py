"""YAML reading that remembers where every key is, so validation errors can name a line.

The loader reads YAML 1.2 style scalars: only true/false are booleans, `10:00` stays the text
"10:00" (YAML 1.1 would read the number 600), `2026-01-04` stays text for pydantic to parse, and
`010` is ten. Duplicate keys, which PyYAML silently resolves to the last one, are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path_ = tuple[str | int, ...]
"""A key path: mapping keys as text, sequence positions as ints (pydantic's `loc` shape)."""

_MAX_NODES = 200_000  # alias expansion guard: a "billion laughs" file cannot make us walk forever


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit types."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


def _int(loader: _Loader, node: ScalarNode) -> int:
    return int(loader.construct_scalar(node).replace("_", ""))


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_Loader.add_constructor("tag:yaml.org,2002:int", _int)


@dataclass(frozen=True)
class Where:
    """Where a key path sits: the line of its key (or list item), and its value's line and style
    (a scalar's YAML style such as "|", or "{}" for a flow collection)."""

    line: int
    value_line: int
    style: str | None


@dataclass
class Source:
    """A parsed YAML file: the data, a line for every key path, and problems found while reading."""

    data: Any = None
    lines: dict[Path_, Where] = field(default_factory=dict)
    problems: list[tuple[Path_, int, str]] = field(default_factory=list)
    """(key path, line, message); a syntax error leaves `data` None."""

    def line_of(self, path: Path_) -> tuple[int, Path_]:
        """The line of the deepest existing key along `path`, and that key's path."""
        best: Path_ = ()
        for depth in range(len(path), 0, -1):
            if path[:depth] in self.lines:
                best = path[:depth]
                break
        where = self.lines.get(best)
        return (where.line if where else 1), best


def parse(text: str) -> Source:
    """Compose and construct one YAML document, recording key lines and duplicate keys."""
    source = Source()
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            source.problems.append(((), 1, "the file is empty"))
            return source
        _walk(node, (), node.start_mark.line + 1, source, set(), [0])
        source.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or "malformed"
        if exc.context:
            where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            detail = f"{detail} ({exc.context}{where})"
        source.problems.append(((), mark.line + 1 if mark else 1, f"YAML syntax error: {detail}"))
        source.data = None
    except yaml.YAMLError as exc:
        source.problems.append(((), 1, f"YAML error: {exc}"))
        source.data = None
    finally:
        loader.dispose()
    return source


def _walk(node: Node, path: Path_, line: int, source: Source, active: set[int], count: list[int]) -> None:
    count[0] += 1
    if count[0] > _MAX_NODES or id(node) in active:
        return
    style = getattr(node, "style", None) or ("{}" if getattr(node, "flow_style", False) else None)
    source.lines.setdefault(path, Where(line, node.start_mark.line + 1, style))
    active.add(id(node))
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value == "<<" and key_node.tag.endswith(":merge"):
                continue
            key, key_line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                source.problems.append((path + (key,), key_line, f"duplicate key {key!r} (first at line {seen[key]})"))
                continue
            seen[key] = key_line
            _walk(value_node, path + (key,), key_line, source, active, count)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), item.start_mark.line + 1, source, active, count)
    active.discard(id(node))
