"""Inbound API formats other than OpenAI's, translated to OpenAI's and back, so a request in
any of them is routed to any provider: ``anthropic_request`` (an Anthropic Messages request
as a chat-completions request), ``anthropic_response`` (a chat completion as an Anthropic
message) and ``anthropic_stream`` (chat-completion chunks as Anthropic stream events)."""
