"""What the semantic and advanced tiers compare: the split of a request into its last user
message and an exact key over the rest, and the wording check."""

from __future__ import annotations

from typing import Any

import msgspec

from floopy._native import CacheKeyer
from floopy.pipeline.cache.conversation import split
from floopy.pipeline.cache.tier import Query
from floopy.pipeline.cache.wording import wording


def query(messages: list[Any], organization: str = "acme", **body: Any) -> Query:
    doc = {"model": "gpt-4o-mini", "messages": messages, **body}
    return Query(
        api="chat",
        body=msgspec.json.encode(doc),
        organization=organization,
        project="web",
        routing="\0",
        seed=None,
        ignore_keys=[],
        bucket_size=1,
        bucketed=False,
        ttl=60.0,
        stream=False,
        include_usage=False,
    )


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


def key(messages: list[Any], **extra: Any) -> str:
    talk = split(query(messages, **extra), CacheKeyer(), 2000)
    assert talk is not None
    return talk.key


def test_single_turn_is_an_optional_system_prompt_and_one_user_message() -> None:
    keyer = CacheKeyer()
    system = {"role": "system", "content": "Be brief."}
    for messages in ([user("hi")], [system, user("hi")]):
        talk = split(query(messages), keyer, 2000)
        assert talk is not None and talk.single_turn and talk.text == "hi"
    turns = [user("hi"), {"role": "assistant", "content": "hello"}, user("and then?")]
    talk = split(query(turns), keyer, 2000)
    assert talk is not None and not talk.single_turn and talk.turns == 3


def test_only_text_from_the_user_is_compared() -> None:
    keyer = CacheKeyer()
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert (
        split(query([user([{"type": "text", "text": "what is this"}, image])]), keyer, 99) is None
    )
    assert split(query([{"role": "assistant", "content": "hi"}]), keyer, 99) is None
    assert split(query([user("   ")]), keyer, 99) is None
    assert split(query([user("x" * 100)]), keyer, 99) is None  # longer than max_chars
    parts = split(
        query([user([{"type": "text", "text": "two"}, {"type": "text", "text": "parts"}])]),
        keyer,
        99,
    )
    assert parts is not None and parts.text == "two\nparts"


def test_the_key_is_everything_but_the_last_question() -> None:
    asked = key([user("What is the capital of France?")])
    assert key([user("What's the capital city of France?")]) == asked
    assert key([user("What is the capital of France?")], temperature=0.2) != asked
    assert key([{"role": "system", "content": "In French."}, user("Capital of France?")]) != asked
    assert key([user("What is the capital of France?")], organization="globex") != asked
    history = [user("I'm going to Japan."), {"role": "assistant", "content": "Nice!"}]
    other = [user("I'm going to Iceland."), {"role": "assistant", "content": "Nice!"}]
    assert key([*history, user("What to pack?")]) != key([*other, user("What to pack?")])


def agrees(stored: str, asked: str) -> bool:
    a, b = wording(stored), wording(asked)
    return a.literals == b.literals and b.agrees(a.words)


def test_the_wording_check() -> None:
    assert agrees("What is the capital of France?", "What's the capital city of France?")
    assert agrees("How do I sort a list in Python?", "Can you tell me how to sort lists in Python?")
    assert not agrees("What is 17 times 23?", "What is 17 times 24?")
    assert not agrees("Is it safe to eat raw eggs?", "Isn't it safe to eat raw eggs?")
    assert not agrees("Summarize the arguments for it.", "Summarize the arguments against it.")
    assert not agrees("Convert 10 miles to kilometers.", "Convert 10 kilometers to miles.")
    assert not agrees("Write it in Python.", "Write it in Rust.")
    assert not agrees("How many watts in a horsepower?", "How many kilowatts in a horsepower?")
