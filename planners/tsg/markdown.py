"""The guide as a Markdown document tree: sections, paragraphs, lists and code blocks.

markdown-it-py does the parsing (CommonMark, so nested lists, indented fences and HTML
blocks behave as GitHub renders them); this module only folds its token stream into a tree
whose every node knows its 1-based source line. Front matter (``---`` … ``---``, as Hugo
sites use) is blanked out first, keeping line numbers, and returned as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = [
    "Block",
    "CodeBlock",
    "Document",
    "FrontMatterError",
    "Link",
    "ListBlock",
    "ListItem",
    "Paragraph",
    "Section",
    "parse_markdown",
    "slugify",
]

_PARSER = MarkdownIt("commonmark").enable("table")
#: Hugo shortcodes the Kubernetes docs use as headings.
_SHORTCODE_TITLES = {
    '{{% heading "whatsnext" %}}': "What's next",
    '{{% heading "prerequisites" %}}': "Before you begin",
}
_HTML_COMMENT = re.compile(r"^\s*<!--.*?-->\s*$")


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass
class Paragraph:
    line: int
    text: str  # inline code kept in backticks, emphasis dropped
    codes: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


@dataclass
class CodeBlock:
    line: int  # the fence line; content starts on the next one
    language: str
    text: str
    fenced: bool = True


@dataclass
class ListItem:
    line: int
    marker: str  # "3" for "3." items, "" for bullets
    blocks: list[Block] = field(default_factory=list)


@dataclass
class ListBlock:
    line: int
    ordered: bool
    items: list[ListItem] = field(default_factory=list)


Block = Paragraph | CodeBlock | ListBlock


@dataclass
class Section:
    title: str
    level: int  # 0 for the document itself, 1-6 for headings
    line: int
    anchor: str
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)


@dataclass
class Document:
    root: Section
    front_matter: dict[str, Any]
    lines: list[str]


def slugify(text: str) -> str:
    """The anchor GitHub and Hugo give a heading: lower case, punctuation dropped, dashes."""
    text = re.sub(r"[^\w\s-]", "", text.strip().lower())
    return re.sub(r"\s+", "-", text)


class FrontMatterError(ValueError):
    """Front matter that parses but cannot be used (an alias bomb, nesting too deep)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _load_front_matter(text: str, line: int) -> Any:
    """The YAML between the ``---`` lines, read like a workflow file (value cap, no tags)."""
    # Imported here: planners.workflow imports the orchestrator, which markdown users may not need.
    from planners.workflow import WorkflowFileError
    from planners.workflow.yaml_source import compose_loader, read_yaml

    try:
        yaml.compose(text, Loader=compose_loader())  # aliases stay shared nodes: cheap even for a bomb
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's bound: YAML, but nested too deeply
            raise FrontMatterError(line, "front matter: nested too deeply") from None
        return None  # not YAML: a thematic break, not front matter
    except RecursionError:  # PyYAML's own composer (no libyaml)
        raise FrontMatterError(line, "front matter: nested too deeply") from None
    try:
        return read_yaml(text).data
    except WorkflowFileError as exc:
        problem = exc.problems[0] if exc.problems else None
        where = line + (problem.line or 1) if problem is not None else line
        raise FrontMatterError(where, f"front matter: {problem.message if problem else exc}") from None
    except RecursionError:
        raise FrontMatterError(line, "front matter: nested too deeply") from None


def _front_matter(lines: list[str]) -> tuple[list[str], dict[str, Any]]:
    index = 0
    while index < len(lines) and (not lines[index].strip() or _HTML_COMMENT.match(lines[index])):
        index += 1
    if index >= len(lines) or lines[index].strip() != "---":
        return lines, {}
    for end in range(index + 1, len(lines)):
        if lines[end].strip() == "---":
            block = "\n".join(lines[index + 1 : end])
            if not block.strip():
                return lines[:index] + [""] * (end - index + 1) + lines[end + 1 :], {}
            data = _load_front_matter(block, index + 1)
            if data is None:
                return lines, {}  # a thematic break, not front matter
            blanked = lines[:index] + [""] * (end - index + 1) + lines[end + 1 :]
            return blanked, data if isinstance(data, dict) else {}
    return lines, {}


def _inline(token: Token) -> Paragraph:
    parts: list[str] = []
    codes: list[str] = []
    links: list[Link] = []
    href: str | None = None
    link_text: list[str] = []
    for child in token.children or ():
        if child.type == "code_inline":
            codes.append(child.content)
            piece = f"`{child.content}`"
        elif child.type in ("text", "html_inline"):
            piece = child.content
        elif child.type in ("softbreak", "hardbreak"):
            piece = " "
        elif child.type == "link_open":
            href, link_text = str(child.attrs.get("href", "")), []
            continue
        elif child.type == "link_close":
            links.append(Link("".join(link_text).strip(), href or ""))
            href = None
            continue
        else:
            continue
        parts.append(piece)
        if href is not None:
            link_text.append(piece)
    line = token.map[0] + 1 if token.map else 0
    return Paragraph(line, "".join(parts).strip(), codes, links)


class _Builder:
    """Folds the flat token stream into nested blocks (one pass, a cursor over tokens)."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def blocks_until(self, close: str | None) -> list[Block]:
        blocks: list[Block] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            if close is not None and token.type == close:
                self.pos += 1
                return blocks
            if close is None and token.type == "heading_open":
                return blocks
            self.pos += 1
            block = self.block(token)
            if block is not None:
                blocks.append(block)
        return blocks

    def block(self, token: Token) -> Block | None:
        line = token.map[0] + 1 if token.map else 0
        if token.type == "paragraph_open":
            paragraph = _inline(self.tokens[self.pos])
            self.pos += 2  # inline, paragraph_close
            return paragraph
        if token.type in ("fence", "code_block"):
            language = token.info.strip().split()[0].lower() if token.info.strip() else ""
            return CodeBlock(line, language, token.content, fenced=token.type == "fence")
        if token.type in ("bullet_list_open", "ordered_list_open"):
            close = token.type.replace("_open", "_close")
            result = ListBlock(line, token.type == "ordered_list_open")
            while self.tokens[self.pos].type != close:
                item_token = self.tokens[self.pos]
                self.pos += 1
                item_line = item_token.map[0] + 1 if item_token.map else line
                result.items.append(
                    ListItem(item_line, item_token.info, self.blocks_until("list_item_close"))
                )
            self.pos += 1
            return result
        if token.type in ("blockquote_open", "table_open"):
            # Quoted text still holds steps (notes, warnings); tables are reference data.
            close = token.type.replace("_open", "_close")
            inner = self.blocks_until(close)
            return (
                ListBlock(line, False, [ListItem(line, "", inner)])
                if token.type == "blockquote_open"
                else None
            )
        return None  # html blocks, rules: no steps in them


_PLUGIN_OPEN = re.compile(r"^(\s*)<PLUGIN_(\d+)>\s*$")
_PLUGIN_CLOSE = re.compile(r"^(\s*)</PLUGIN_(\d+)>\s*$")
_PLUGIN_CALL = re.compile(r"^[A-Za-z_][\w.]*\s*\(")
_PLUGIN_PARAM = re.compile(r"(?<![{$\w])\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def unwrap_plugins(lines: list[str]) -> list[str]:
    """StepFly's ``<PLUGIN_N>`` … ``</PLUGIN_N>`` blocks as fenced code (SQL, or KQL), line for line.

    Their ``{param}`` placeholders become ``${param}``, the form every other block uses (SQL
    placeholders then become bound parameters, never pasted into the query text).
    """
    out: list[str] = []
    index = 0
    while index < len(lines):
        opening = _PLUGIN_OPEN.match(lines[index])
        if opening is None:
            out.append(lines[index])
            index += 1
            continue
        end = next(
            (j for j in range(index + 1, len(lines)) if _PLUGIN_CLOSE.match(lines[j])),
            None,
        )
        if end is None:
            out.append(lines[index])
            index += 1
            continue
        body = lines[index + 1 : end]
        first = next((b.strip() for b in body if b.strip()), "")
        sql = re.match(r"(?i)^(?:with|select|insert|update|delete|explain|show)\b", first) is not None
        # ``ScaleDeployment(cluster=…, replicas=…)``: a call of one of the TSG's tools, not a query.
        call = not sql and _PLUGIN_CALL.match(first) is not None
        out.append(opening.group(1) + "```" + ("sql" if sql else "plugin-call" if call else "kql"))
        out.extend(_PLUGIN_PARAM.sub(lambda m: "${" + m.group(1) + "}", b) for b in body)
        out.append(opening.group(1) + "```")
        index = end + 1
    return out


def parse_markdown(text: str) -> Document:
    """Parse a guide into a ``Document`` whose root section holds the heading tree."""
    lines, front = _front_matter(unwrap_plugins(text.splitlines()))
    tokens = _PARSER.parse("\n".join(lines))
    builder = _Builder(tokens)
    root = Section(str(front.get("title", "")), 0, 1, "", builder.blocks_until(None))
    stack = [root]
    while builder.pos < len(tokens):
        token = tokens[builder.pos]
        level = int(token.tag[1])
        title = _inline(tokens[builder.pos + 1]).text.replace("`", "")
        title = _SHORTCODE_TITLES.get(title, title)
        builder.pos += 3  # heading_open, inline, heading_close
        section = Section(title, level, token.map[0] + 1 if token.map else 0, slugify(title))
        section.blocks = builder.blocks_until(None)
        while stack[-1].level >= level:
            stack.pop()
        stack[-1].children.append(section)
        stack.append(section)
    return Document(root, front, text.splitlines())
