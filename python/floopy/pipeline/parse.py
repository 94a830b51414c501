"""Stage 1, parse: headers and body through the native core, which raises the error tree's
own classes (``floopy.errors``: PayloadTooLarge, InvalidJson, InvalidField, InvalidHeader)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from floopy import _native, errors


class RequestHeaders(Protocol):
    """The server's view of the request headers (granian's ``scope.headers``)."""

    def items(self) -> Iterable[tuple[str, str]]: ...
    def keys(self) -> Iterable[str]: ...


class Parser:
    """The configured native parsers of one worker: built once, called per request."""

    def __init__(
        self, max_body_bytes: int, max_depth: int, max_header_value: int, max_properties: int
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self._body = _native.RequestParser(max_body_bytes=max_body_bytes, max_depth=max_depth)
        self._headers = _native.HeaderExtractor(
            max_value_len=max_header_value, max_properties=max_properties
        )

    def headers(self, raw: RequestHeaders) -> _native.FloopyHeaders:
        # granian leaves out of items() a value it cannot decode (anything outside printable
        # ASCII) but keeps its name in keys(): the names let the extractor refuse such a
        # floopy-* header with a 400 instead of reading the request as if it were absent.
        return self._headers.extract(raw.items(), names=raw.keys())

    def chat(self, body: bytes) -> _native.ChatRequest:
        return self._body.parse(body)

    def check_length(self, declared: int) -> None:
        if declared > self.max_body_bytes:
            raise payload_too_large(declared, self.max_body_bytes)


def payload_too_large(size: int, limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(
        f"request body is {size} bytes, over the limit of {limit} bytes (MAX_BODY_BYTES)"
    )
