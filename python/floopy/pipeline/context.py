"""The request context: what each stage reads and sets, carried to the log at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floopy._native import ChatRequest, FloopyHeaders
    from floopy.providers.base import Usage
    from floopy.settings import ApiKeyEntry


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str
    path: str
    client_ip: str
    started: float = field(default_factory=time.perf_counter)
    headers: FloopyHeaders | None = None  # parse
    key: ApiKeyEntry | None = None  # auth
    chat: ChatRequest | None = None  # parse
    body: bytes = b""
    requested_model: str | None = None  # routing
    provider: str | None = None  # dispatch: the target that answered
    model: str | None = None
    fallback_used: bool = False
    status: int = 200
    error_code: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    ttft_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, since: float) -> float:
        """Records how long ``stage`` took since ``since``; returns now."""
        now = time.perf_counter()
        self.stages_ms[stage] = (now - since) * 1000
        return now
