"""The planning prompt is compact: signatures and output shapes, one worked example, no schemas."""

from __future__ import annotations

from pydantic import BaseModel

from orchestrator.cli.planner import ask_registry
from planners.llm.messages import plan_messages
from planners.llm.tooldocs import signature, summary
from tools import ToolRegistry, tool
from tools.builtin import BUILTIN_TOOLS


class Page(BaseModel):
    title: str
    text: str


@tool
def fetch(url: str, timeout: float = 10.0, lang: str = "en") -> Page:
    """Fetch a page. Follows redirects, retries twice."""
    return Page(title="", text="")


def test_a_signature_has_required_args_the_options_that_matter_and_the_output_shape() -> None:
    assert signature(fetch) == "fetch(url: string, lang?: string, …) -> {title: string, text: string}"
    assert summary(fetch) == "Fetch a page."


def test_the_first_plan_prompt_with_the_default_tools_is_under_4000_characters() -> None:
    registry = ask_registry(None, frozenset(), everything=False)
    messages = plan_messages(registry, "Is it warmer in Paris or Rome today?")
    size = sum(len(m["content"]) for m in messages)
    assert size <= 4000, size
    prompt = messages[0]["content"]
    assert "JSON Schema" not in prompt and "kill_grace" not in prompt and "busy_timeout" not in prompt
    assert "read_file(path: string, …) -> {path: string, text: string, size_bytes: integer}" in prompt
    assert prompt.count('{"tasks": [{"id": "t1"') == 1  # one worked example


def test_every_built_in_fits_too() -> None:
    messages = plan_messages(ToolRegistry(list(BUILTIN_TOOLS)), "x")
    assert sum(len(m["content"]) for m in messages) <= 4000


def test_tools_that_cannot_run_here_are_not_offered() -> None:
    # No registered callables and no terminal (tests run without one): neither is offered.
    names = set(ask_registry(None, frozenset(), everything=True).names)
    assert "python" not in names and "shell" in names
    assert "approve" in names  # --yes approves it
    assert "approve" not in set(ask_registry(None, frozenset(), everything=False).names)
    assert "approve" in set(ask_registry(None, frozenset({"approve"}), everything=False).names)
