"""The guide as the author laid it out, with every block's first and last source line.

``markdown`` folds the guide into sections for the workflow; the plan (``plan``) needs more
provenance: where each list item, paragraph, sentence and inline command starts and ends,
so a step's ``lines`` and a command's ``line`` are the guide's own. markdown-it-py parses;
front matter is blanked (line numbers kept) as in ``markdown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.token import Token

from .markdown import _PARSER, _front_matter, unwrap_plugins

__all__ = ["Blk", "Sec", "Sentence", "parse_doc"]

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\[[^\]]*\]")
_MARKER = re.compile(r"^\s*(?:>\s*)*(?:[*+-]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\[(\"'])|(?<=:)\s*\n\s*(?=\S)")


@dataclass
class Sentence:
    line: int
    text: str


@dataclass
class Blk:
    """A paragraph (``para``), code block (``code``), list (``list``), item (``item``) or quote."""

    kind: str
    first: int
    last: int
    text: str = ""  # paragraphs: the raw source with links reduced to their text
    codes: list[tuple[str, int]] = field(default_factory=list)  # inline code and its line
    lang: str = ""
    content: str = ""
    ordered: bool = False
    marker: str = ""
    children: list[Blk] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    links: list[tuple[str, str, int]] = field(default_factory=list)  # (text, href, line)
    fenced: bool = True  # a fenced code block's body starts on the line after ``first``

    def walk(self) -> list[Blk]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def own_text(self) -> str:
        """An item's own words: its paragraphs, not nested lists."""
        return " ".join(b.text for b in self.children if b.kind == "para")


@dataclass
class Sec:
    title: str
    level: int
    line: int
    last: int = 0
    blocks: list[Blk] = field(default_factory=list)
    children: list[Sec] = field(default_factory=list)


def _trim(lines: list[str], first: int, last: int) -> int:
    """The last non-blank line in [first, last] (1-based), at least ``first``."""
    while last > first and not lines[last - 1].strip():
        last -= 1
    return last


def _clean(text: str) -> str:
    text = _LINK.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
    text = re.sub(r"\*\*|__", "", text)
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>])", r"\1", text)  # Markdown escapes: HEALTH\_OK


def _sentences(raw_lines: list[str], first: int) -> list[Sentence]:
    """Sentences of a paragraph with the line each starts on."""
    joined = "\n".join(raw_lines)
    out: list[Sentence] = []
    start = 0
    for match in [*_SENTENCE_END.finditer(joined), None]:
        end = match.start() if match else len(joined)
        piece = joined[start:end]
        stripped = piece.strip()
        if stripped:
            offset = start + (len(piece) - len(piece.lstrip()))
            line = first + joined.count("\n", 0, offset)
            out.append(Sentence(line, _clean(re.sub(r"\s+", " ", stripped.lstrip(">").strip()))))
        start = match.end() if match else len(joined)
    return out


class _Builder:
    def __init__(self, tokens: list[Token], lines: list[str]) -> None:
        self.tokens = tokens
        self.lines = lines
        self.pos = 0

    def span(self, token: Token) -> tuple[int, int]:
        first, end = (token.map[0] + 1, token.map[1]) if token.map else (1, 1)
        return first, _trim(self.lines, first, max(first, end))

    def inline_codes(self, token: Token, first: int, last: int) -> list[tuple[str, int]]:
        raw = "\n".join(self.lines[first - 1 : last])
        cursor = 0
        found: list[tuple[str, int]] = []
        for child in token.children or ():
            if child.type != "code_inline":
                continue
            content = child.content
            head = content.split()[0] if content.split() else content
            index = raw.find(head, cursor) if head else -1
            if index < 0:
                found.append((content, first))
                continue
            found.append((content, first + raw.count("\n", 0, index)))
            cursor = index + len(head)
        return found

    def blocks_until(self, close: str | None) -> list[Blk]:
        blocks: list[Blk] = []
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

    def block(self, token: Token) -> Blk | None:
        first, last = self.span(token)
        if token.type == "paragraph_open":
            inline = self.tokens[self.pos]
            self.pos += 2
            raw = list(self.lines[first - 1 : last])
            if raw:
                raw[0] = _MARKER.sub("", raw[0])
            text = _clean(" ".join(line.strip().lstrip(">").strip() for line in raw))
            return Blk(
                "para",
                first,
                last,
                text=text,
                codes=self.inline_codes(inline, first, last),
                links=[
                    (m.group(1), m.group(2), first + i)
                    for i, line in enumerate(raw)
                    for m in re.finditer(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)", line)
                ],
                sentences=_sentences(raw, first),
            )
        if token.type in ("fence", "code_block"):
            lang = token.info.strip().split()[0].lower() if token.info.strip() else ""
            return Blk("code", first, last, lang=lang, content=token.content, fenced=token.type == "fence")
        if token.type in ("bullet_list_open", "ordered_list_open"):
            close = token.type.replace("_open", "_close")
            result = Blk("list", first, last, ordered=token.type == "ordered_list_open")
            while self.tokens[self.pos].type != close:
                item = self.tokens[self.pos]
                self.pos += 1
                item_first, item_last = self.span(item)
                children = self.blocks_until("list_item_close")
                if children:
                    item_last = max(item_last, max(c.last for c in children))
                    item_last = min(item_last, _trim(self.lines, item_first, item_last))
                result.children.append(
                    Blk("item", item_first, item_last, marker=item.info, children=children)
                )
            self.pos += 1
            return result
        if token.type == "blockquote_open":
            inner = self.blocks_until("blockquote_close")
            return Blk("quote", first, last, children=inner)
        if token.type == "table_open":
            return self.table(first, last)
        return None

    def table(self, first: int, last: int) -> Blk | None:
        """A table is reference data, unless every body row holds a command line in inline code
        (a "First look" table of checks): then its rows read as a bullet list, one item a row."""
        rows: list[Blk] = []
        commands = True
        while self.pos < len(self.tokens) and self.tokens[self.pos].type != "table_close":
            token = self.tokens[self.pos]
            self.pos += 1
            if token.type != "tr_open" or not token.map or self.in_head(token):
                continue
            line = token.map[0] + 1
            cells: list[str] = []
            codes: list[tuple[str, int]] = []
            while self.tokens[self.pos].type != "tr_close":
                inline = self.tokens[self.pos]
                self.pos += 1
                if inline.type == "inline":
                    cells.append(inline.content.strip())
                    codes.extend((c.content, line) for c in inline.children or () if c.type == "code_inline")
            # a command line has arguments: `kubectl get pods -A`, not a value such as `CrashLoopBackOff`
            commands = commands and any(len(code.split()) > 1 for code, _ in codes)
            text = _clean(": ".join(cell for cell in cells if cell))
            para = Blk("para", line, line, text=text, codes=codes, sentences=[Sentence(line, text)])
            rows.append(Blk("item", line, line, marker=".", children=[para]))
        self.pos += 1
        if not rows or not commands:
            return None
        return Blk("list", rows[0].first, rows[-1].last, ordered=True, children=rows)

    def in_head(self, row: Token) -> bool:
        """Whether a table row is the header row (its cells are ``th``)."""
        return self.pos < len(self.tokens) and self.tokens[self.pos].type == "th_open"


def parse_doc(text: str) -> tuple[Sec, list[str]]:
    """The section tree (root level 0) and the guide's lines; front matter is blank lines."""
    lines, _ = _front_matter(unwrap_plugins(text.splitlines()))
    tokens = _PARSER.parse("\n".join(lines))
    builder = _Builder(tokens, lines)
    root = Sec("", 0, 1, len(lines), builder.blocks_until(None))
    stack = [root]
    heads: list[Sec] = []
    while builder.pos < len(tokens):
        token = tokens[builder.pos]
        level = int(token.tag[1])
        title = _clean(tokens[builder.pos + 1].content).replace("`", "").strip()
        builder.pos += 3
        section = Sec(title, level, token.map[0] + 1 if token.map else 0)
        section.blocks = builder.blocks_until(None)
        while stack[-1].level >= level:
            stack.pop()
        stack[-1].children.append(section)
        stack.append(section)
        heads.append(section)
    for index, section in enumerate(heads):
        following = next((h.line for h in heads[index + 1 :] if h.level <= section.level), len(lines) + 1)
        section.last = _trim(lines, section.line, following - 1)
    return root, lines
