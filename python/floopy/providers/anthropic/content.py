"""Content pieces shared by both directions of the Anthropic translation: images and
documents as data URLs or links, and the checks that turn malformed input into a 400 naming
the field (never an exception that would become a 500)."""

from __future__ import annotations

import re
from typing import Any

from floopy.errors import BadRequest

_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^;,]*)*;base64,", re.ASCII)


def check_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object", param=where)
    return value


def check_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(f"{where} must be an array", param=where)
    return value


def text_of(part: dict[str, Any], where: str) -> str:
    """The text of a text part or block; other kinds of parts have no place here."""
    text = part.get("text")
    if part.get("type") != "text" or not isinstance(text, str):
        raise BadRequest(f"{where} must be a text part with a string `text`", param=where)
    return text


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data URL, or None for anything else."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    return match["media"].lower(), url[match.end() :]


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def image_block(image_url: Any, where: str) -> dict[str, Any]:
    """An OpenAI ``image_url`` (a data URL or an http(s) link) as an Anthropic image block."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise BadRequest("image_url.url must be a string", param=f"{where}.image_url.url")
    inline = split_data_url(url)
    if inline is not None:
        media_type, data = inline
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(
        "image_url.url must be a base64 data URL or an http(s) URL",
        param=f"{where}.image_url.url",
    )


def document_block(file: Any, where: str) -> dict[str, Any]:
    """An OpenAI ``file`` part carrying its data inline (a PDF) as an Anthropic document."""
    data = file.get("file_data") if isinstance(file, dict) else None
    inline = split_data_url(data) if isinstance(data, str) else None
    if inline is None:
        raise BadRequest(
            "file parts need file_data as a base64 data URL for Anthropic models "
            "(uploaded file ids are OpenAI's own)",
            param=f"{where}.file",
        )
    media_type, payload = inline
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": payload},
    }


def openai_image_part(source: Any, where: str) -> dict[str, Any]:
    """An Anthropic image source (base64 or url) as an OpenAI ``image_url`` part."""
    source = check_object(source, f"{where}.source")
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str):
        media_type = source.get("media_type")
        url = data_url(media_type if isinstance(media_type, str) else "image/png", source["data"])
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise BadRequest(
            "image source must be {type: base64, media_type, data} or {type: url, url}",
            param=f"{where}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}
