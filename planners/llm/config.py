"""Where the model is: API key, base URL and model name, from arguments or the environment.

Users configure OpenAI-compatible tools with ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``
already, so we read those; the model comes from ``STEPWEAVE_MODEL``. A local server
(llama.cpp, Ollama, vLLM) needs a base URL and usually no key; OpenAI itself needs a key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator import WorkflowError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "LLMConfig",
    "LLMConfigError",
    "check_configuration",
]

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
MODEL_ENV = "STEPWEAVE_MODEL"
#: Used only against OpenAI itself (no base URL): any other server names its own models.
DEFAULT_MODEL = "gpt-4o-mini"
#: Sent when a local server needs no key: the openai client refuses to start without one.
NO_KEY = "not-needed"

_HOW_TO = (
    f"set {API_KEY_ENV} to use OpenAI, or {BASE_URL_ENV} (e.g. http://localhost:8080/v1) for an "
    f"OpenAI-compatible server such as llama.cpp, Ollama or vLLM; choose the model with "
    f"{MODEL_ENV} or --model"
)


class LLMConfigError(WorkflowError):
    """The LLM planner is not configured: no API key or base URL, or no model for the server.

    A definition-side error: the user fixes their environment before anything runs.
    """


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """A resolved configuration. ``api_key`` is never printed by ``repr``."""

    model: str
    base_url: str | None
    api_key: str | None

    def __repr__(self) -> str:
        key = "set" if self.api_key else "unset"
        return f"LLMConfig(model={self.model!r}, base_url={self.base_url!r}, api_key={key})"


def check_configuration(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> LLMConfig:
    """Resolve arguments, then the environment; raise ``LLMConfigError`` saying how to fix it.

    Arguments win over the environment. Without a base URL the server is OpenAI, which
    needs a key and gets ``DEFAULT_MODEL`` when none is named; with a base URL the key is
    optional and the model must be named (servers differ in what they call their models).
    """
    env = os.environ if environ is None else environ
    api_key = api_key or env.get(API_KEY_ENV) or None
    base_url = base_url or env.get(BASE_URL_ENV) or None
    model = model or env.get(MODEL_ENV) or None
    if api_key is None and base_url is None:
        raise LLMConfigError(f"the LLM planner has no model server configured: {_HOW_TO}")
    if model is None:
        if base_url is not None:
            raise LLMConfigError(
                f"no model named for {base_url}: set {MODEL_ENV} (or pass --model) to a model that "
                "server serves"
            )
        model = DEFAULT_MODEL
    return LLMConfig(model=model, base_url=base_url, api_key=api_key)
