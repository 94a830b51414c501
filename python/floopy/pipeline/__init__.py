"""The request pipeline, one module per stage, run in this order; each may answer early.

1. parse: body and headers, by the native core (size limits, JSON validity, floopy-* headers)
2. auth: gateway API key (hashed at rest) to organization, project, key policy
3. rate limit: per key / org / user; 429 with ``Retry-After``
4. cache: exact, then semantic, then advanced (when enabled for the request)
5. firewall: verdict cache, then LLM safety classifier; block, flag or pass
6. routing: routing rule or model name to an ordered list of (provider, model) targets
7. dispatch: translate, call upstream, retry, circuit breaker, fall back, relay the stream
8. respond: response headers, then the body or the SSE stream
9. log (off the request path): request record, trace spans, circuit-breaker events

``floopy.app`` builds the pipeline; ``context.RequestContext`` carries what each stage sets.
"""
