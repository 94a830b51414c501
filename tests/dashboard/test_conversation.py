"""Logged bodies read as a conversation, whatever shape (or state) they are in."""

from __future__ import annotations

import json

from floopy.dashboard import conversation


def test_an_openai_chat_and_its_answer() -> None:
    request = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi <b>there</b>"}]},
        ],
    }
    response = {"choices": [{"message": {"role": "assistant", "content": "hello"}}]}
    turns = conversation.of(json.dumps(request), json.dumps(response))
    assert [(t["role"], t["text"]) for t in turns] == [
        ("system", "be brief"),
        ("user", "hi <b>there</b>"),
        ("assistant", "hello"),
    ]
    assert conversation.last_user_text(turns) == "hi <b>there</b>"
    assert conversation.answer_text(turns) == "hello"


def test_anthropic_messages_and_a_streamed_answer_kept_as_text() -> None:
    request = {"system": "sys", "messages": [{"role": "user", "content": "q"}]}
    turns = conversation.of(json.dumps(request), "streamed words")
    assert [(t["role"], t["text"]) for t in turns] == [
        ("system", "sys"),
        ("user", "q"),
        ("assistant", "streamed words"),
    ]


def test_a_cut_or_unreadable_body_is_shown_raw() -> None:
    cut = '{"messages": [{"role": "user", "content": "long'
    turns = conversation.of(cut, "")
    assert turns == [{"role": "request", "text": cut}]
    assert conversation.answer_text(turns) == ""
    assert conversation.of("", "") == []
