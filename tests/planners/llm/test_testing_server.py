"""The scripted OpenAI-compatible server's pacing, which the LLM benchmark relies on."""

from __future__ import annotations

import time

from openai import AsyncOpenAI

from planners.llm.testing import OpenAITestServer, ScriptedReply


async def test_reading_a_long_prompt_delays_the_first_token_like_a_real_server() -> None:
    """A paced reply waits prompt tokens / prefill rate before its first token, so a
    strategy that resends a long history pays for it, as on llama.cpp's server."""
    prompt = "word " * 800  # 4,000 characters: about 1,000 prompt tokens
    async with OpenAITestServer(model="m") as server:
        server.queue(
            ScriptedReply(content="ok", prefill_tokens_per_second=4000.0),
            ScriptedReply(content="ok", prefill_tokens_per_second=4000.0),
        )
        client = AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        try:
            for stream in (False, True):
                started = time.monotonic()
                if stream:
                    chunks = await client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": prompt}], stream=True
                    )
                    async for _ in chunks:
                        break  # the first token
                    await chunks.close()
                else:
                    await client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": prompt}]
                    )
                waited = time.monotonic() - started
                assert waited >= 0.24, (stream, waited)  # >= 1,000 tokens / 4,000 tokens/s, never less
        finally:
            await client.close()
