"""The ``llm`` backend: a Llama Guard model through any configured provider (an
OpenAI-compatible vendor, a local Ollama...), asked with the standard Llama Guard task prompt
and its category list, and held to its answer format.

Llama Guard answers ``safe``, or ``unsafe`` and a line of category codes (``S1,S10``).
Anything else (other words, an unknown code, a refusal, an empty answer) is no verdict:
``ClassifierError``, which the firewall turns into ``error``. Llama Guard gives no score over
a chat API: unsafe scores 1.0 and safe 0.0.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from floopy import errors
from floopy.pipeline.firewall.verdict import ClassifierError, Verdict
from floopy.providers.base import Call

if TYPE_CHECKING:
    from floopy.providers.base import Provider
    from floopy.vectors import Vector

# The Llama Guard 3 hazard categories (MLCommons taxonomy), by code.
CATEGORIES = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}
_CODES = re.compile(r"S\d{1,2}(?:\s*,\s*S\d{1,2})*")

PROMPT = """Task: Check if there is unsafe content in 'User' messages in conversations according \
our safety policy with the below categories.

<BEGIN UNSAFE CONTENT CATEGORIES>
{categories}
<END UNSAFE CONTENT CATEGORIES>

<BEGIN CONVERSATION>

User: {text}

<END CONVERSATION>

Provide your safety assessment for ONLY THE LAST User message in the above conversation:
 - First line must read 'safe' or 'unsafe'.
 - If unsafe, a second line must include a comma-separated list of violated categories."""


def prompt(text: str) -> str:
    categories = "\n".join(f"{code}: {name}." for code, name in CATEGORIES.items())
    return PROMPT.format(categories=categories, text=text)


def parse_answer(answer: str) -> tuple[bool, tuple[str, ...]]:
    """(unsafe, category names) from Llama Guard's answer; ClassifierError otherwise."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if lines == ["safe"]:
        return False, ()
    if len(lines) == 2 and lines[0] == "unsafe" and _CODES.fullmatch(lines[1]):
        codes = [code.strip() for code in lines[1].split(",")]
        if all(code in CATEGORIES for code in codes):
            return True, tuple(dict.fromkeys(CATEGORIES[code] for code in codes))
    raise ClassifierError(f"the safety model answered what is not a verdict ({len(answer)} chars)")


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    choices: list[_Choice]


_completion = msgspec.json.Decoder(_Completion)


class LlmClassifier:
    backend = "llm"
    embedder_name: str | None = None  # it reads text, not vectors
    window_chars: int | None = None  # FIREWALL.window_chars

    def __init__(self, provider: Provider, *, model: str, upstream_model: str) -> None:
        self._provider = provider
        self._upstream_model = upstream_model
        self.model = model

    async def classify(
        self, windows: Sequence[str], vectors: Sequence[Vector] | None
    ) -> list[Verdict]:
        return list(await asyncio.gather(*(self._one(text) for text in windows)))

    async def _one(self, text: str) -> Verdict:
        asked = prompt(text)
        body: dict[str, Any] = {
            "model": self._upstream_model,
            "messages": [{"role": "user", "content": asked}],
            "max_tokens": 20,
            "temperature": 0,
        }
        call = Call(
            body=msgspec.json.encode(body),
            model=self._upstream_model,
            requested_model=self.model,
            stream=False,
            include_usage=False,
            user_text=asked,
        )
        try:
            completion = await self._provider.complete(call)
            choices = _completion.decode(completion.body).choices
        except errors.FloopyError as exc:
            raise ClassifierError(f"{self.model}: {exc.message}") from exc
        except msgspec.DecodeError as exc:
            raise ClassifierError(f"{self.model}: not a chat completion") from exc
        if not choices or choices[0].message.content is None:
            raise ClassifierError(f"{self.model}: an answer without text")
        unsafe, categories = parse_answer(choices[0].message.content)
        return Verdict(
            "unsafe" if unsafe else "safe",
            1.0 if unsafe else 0.0,
            categories,
            self.backend,
            self.model,
        )

    async def warm_up(self) -> None:
        """Nothing to load: the provider's connections open on the first call."""

    async def close(self) -> None:
        """The provider is the worker's, closed with it."""
