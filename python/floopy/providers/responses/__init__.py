"""OpenAI's Responses API (``POST /v1/responses``) for every provider kind.

A provider that speaks it natively (OpenAI, Azure OpenAI, OpenAI-compatible servers) gets the
client's request as it is and its answer is relayed (``native``); every other provider gets it
over chat completions: the request translated to a chat body (``request``), the completion
turned back into a ``response`` object (``response``) and a chat stream into the typed event
stream (``stream``), all wired together in ``over_chat``.
"""
