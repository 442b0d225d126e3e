"""Configuration: from arguments or the environment, with errors that say how to fix them."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI

from orchestrator import WorkflowError
from planners.llm import LLMConfigError, LLMPlanner, check_configuration
from planners.llm.config import DEFAULT_MODEL


def test_nothing_configured_says_what_to_set() -> None:
    with pytest.raises(LLMConfigError) as caught:
        check_configuration(environ={})
    message = str(caught.value)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STEPWEAVE_MODEL"):
        assert name in message
    assert isinstance(caught.value, WorkflowError)


def test_a_base_url_needs_a_model_but_no_key() -> None:
    with pytest.raises(LLMConfigError, match="set STEPWEAVE_MODEL"):
        check_configuration(environ={"OPENAI_BASE_URL": "http://localhost:8080/v1"})
    config = check_configuration(
        environ={"OPENAI_BASE_URL": "http://localhost:8080/v1", "STEPWEAVE_MODEL": "qwen"}
    )
    assert (config.model, config.base_url, config.api_key) == ("qwen", "http://localhost:8080/v1", None)


def test_openai_with_a_key_gets_the_default_model() -> None:
    config = check_configuration(environ={"OPENAI_API_KEY": "sk-secret"})
    assert config.model == DEFAULT_MODEL and config.base_url is None
    assert "sk-secret" not in repr(config)


def test_arguments_win_over_the_environment() -> None:
    env = {"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://env/v1", "STEPWEAVE_MODEL": "env-model"}
    config = check_configuration("arg-model", base_url="http://arg/v1", api_key="sk-arg", environ=env)
    assert (config.model, config.base_url, config.api_key) == ("arg-model", "http://arg/v1", "sk-arg")


def test_the_planner_checks_its_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "STEPWEAVE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        LLMPlanner()


async def test_a_given_client_needs_a_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEPWEAVE_MODEL", raising=False)
    client = AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    try:
        with pytest.raises(LLMConfigError, match="pass model="):
            LLMPlanner(client=client)
        planner = LLMPlanner("m", client=client)
        assert planner.server == "http://127.0.0.1:9/v1"
        assert planner.model == "m"
    finally:
        await client.close()


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_repairs"):
        LLMPlanner("m", base_url="http://127.0.0.1:9/v1", max_repairs=-1)
    with pytest.raises(ValueError, match="api_retries"):
        LLMPlanner("m", base_url="http://127.0.0.1:9/v1", api_retries=-1)
