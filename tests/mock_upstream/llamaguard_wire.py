"""A mock Llama Guard safety model on the chat-completions route: any model whose name
contains ``guard``. It reads the text between ``<BEGIN CONVERSATION>`` and
``<END CONVERSATION>`` of the Llama Guard prompt, and the markers in it pick the answer:

    [harm]        "unsafe" and the codes S1,S10 (Violent Crimes, Hate)
    [garbage]     a chatty answer that is not a verdict
    [bad-code]    "unsafe" with a code Llama Guard does not have (S99)
    [fail]        HTTP 500
    [slow]        waits 10 s, then "safe" (past any firewall time-out in the tests)
    anything else "safe"

A model named ``...guard-wait-<ms>`` waits <ms> before every answer (the benches' fixed
50 ms classifier). Every call is recorded with the other requests (``/_requests``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


def is_guard(model: str) -> bool:
    return "guard" in model


def screened_text(body: dict[str, Any]) -> str:
    prompt = str(body["messages"][-1]["content"])
    return prompt.split("<BEGIN CONVERSATION>", 1)[-1].split("<END CONVERSATION>", 1)[0]


async def answer(
    body: dict[str, Any], error_response: Callable[[int], web.Response]
) -> web.Response:
    model = str(body.get("model", ""))
    if "-wait-" in model:
        await asyncio.sleep(int(model.rsplit("-wait-", 1)[1]) / 1000)
    text = screened_text(body)
    if "[fail]" in text:
        return error_response(500)
    if "[slow]" in text:
        await asyncio.sleep(10)
    if "[harm]" in text:
        verdict = "unsafe\nS1,S10"
    elif "[garbage]" in text:
        verdict = "I'm sorry, but I can't assess this conversation."
    elif "[bad-code]" in text:
        verdict = "unsafe\nS99"
    else:
        verdict = "safe"
    return web.json_response(
        {
            "id": "chatcmpl-guard",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": verdict},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 300, "completion_tokens": 3, "total_tokens": 303},
        }
    )
