"""CacheKeyer through the binding. The canonical form and the framing are recomputed here in
plain Python, so that a change of either on the Rust side cannot pass unnoticed."""

import json
import struct
from typing import Any

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from floopy._native import CacheKeyer
from floopy.errors import InvalidJson

DEFAULT_EXCLUDED = ["stream", "stream_options", "user", "metadata", "store"]

BASE: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
    ],
    "temperature": 0.7,
    "top_p": 0.9,
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
}


def python_canonical(obj: dict[str, Any], left_out: list[str] = DEFAULT_EXCLUDED) -> bytes:
    kept = {key: value for key, value in obj.items() if key not in left_out}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def length_prefixed(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def python_key(canonical: bytes, scope: str, seed: str | None) -> str:
    frame = b"floopy-exact-v1\x00" + length_prefixed(scope)
    frame += b"\x00" if seed is None else b"\x01" + length_prefixed(seed)
    return xxhash.xxh3_128_hexdigest(frame + canonical)


def dumps(obj: object, **options: Any) -> bytes:
    return json.dumps(obj, **options).encode()


@pytest.fixture(scope="module")
def keyer() -> CacheKeyer:
    return CacheKeyer()


def test_default_and_custom_exclusions() -> None:
    assert CacheKeyer().excluded == DEFAULT_EXCLUDED
    assert CacheKeyer(excluded=("store",)).excluded == ["store"]
    assert CacheKeyer(excluded=[]).canonical(b'{"user":"u","stream":true}') == (
        b'{"stream":true,"user":"u"}'
    )
    assert repr(CacheKeyer(excluded=["a"])) == 'CacheKeyer(excluded=["a"])'


SIMPLE_BODIES: list[dict[str, Any]] = [
    {},
    BASE,
    {**BASE, "stream": True, "user": "u-1", "metadata": {"a": "b"}, "store": False},
    {
        "model": "m",
        "messages": [{"role": "user", "content": 'quote " backslash \\ tab \t nl \n bell \x07'}],
        "n": 2,
        "logit_bias": {"50256": -100, "1": 5},
        "stop": None,
        "seed": -12,
        "response_format": {"type": "json_object"},
        "x": [True, False, None, [], {}],
    },
    {"model": "m", "é": "ünïcödé", "\U0001f600": "emoji key", "\uffff": "max BMP", "z": "😀"},
]


@pytest.mark.parametrize("obj", SIMPLE_BODIES)
def test_canonical_form_equals_sorted_compact_json(keyer: CacheKeyer, obj: dict[str, Any]) -> None:
    pretty = dumps(obj, indent=2, ensure_ascii=True)
    assert keyer.canonical(pretty) == python_canonical(obj)


@pytest.mark.parametrize("obj", SIMPLE_BODIES)
@pytest.mark.parametrize(
    ("scope", "seed"), [("", None), ("org-1/proj-2", None), ("org-1/proj-2", ""), ("ôrg", "s-é")]
)
def test_key_is_xxh3_128_over_the_documented_frame(
    keyer: CacheKeyer, obj: dict[str, Any], scope: str, seed: str | None
) -> None:
    key = keyer.key(dumps(obj), scope=scope, seed=seed)
    assert key == python_key(python_canonical(obj), scope, seed)
    assert len(key) == 32
    assert key == key.lower()


def test_pinned_key(keyer: CacheKeyer) -> None:
    # The same value is pinned in the Rust tests: every deployment's cache depends on it.
    assert keyer.key(b"{}") == "53d8f51c64ef802c7378b1bcea123c30"


def test_ignore_keys_are_left_out(keyer: CacheKeyer) -> None:
    ignored = ["temperature", "top_p"]
    assert keyer.canonical(dumps(BASE), ignore_keys=ignored) == python_canonical(
        BASE, [*DEFAULT_EXCLUDED, *ignored]
    )
    assert keyer.key(dumps(BASE), ignore_keys=ignored) == keyer.key(
        dumps({**BASE, "temperature": 0.1, "top_p": 0.2}), ignore_keys=ignored
    )


def test_integral_floats_key_as_integers(keyer: CacheKeyer) -> None:
    assert keyer.canonical(b'{"n":1.0,"t":0.50,"big":1e2}') == b'{"big":100,"n":1,"t":0.5}'
    assert keyer.key(b'{"temperature":1.0}') == keyer.key(b'{"temperature":1}')


def test_layout_and_excluded_fields_do_not_change_the_key(keyer: CacheKeyer) -> None:
    key = keyer.key(dumps(BASE), scope="o/p")
    reordered = dict(reversed(list(BASE.items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in BASE["messages"]]
    variants = [
        dumps(reordered),
        dumps(BASE, indent=4),
        dumps(BASE, ensure_ascii=False, separators=(" , ", " : ")),
        dumps({**BASE, "stream": True, "stream_options": {"include_usage": True}}),
        dumps({**BASE, "user": "someone", "metadata": {"k": "v"}, "store": True}),
    ]
    for variant in variants:
        assert keyer.key(variant, scope="o/p") == key, variant


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o-mini"},
        {"messages": [*BASE["messages"], {"role": "user", "content": "and Spain?"}]},
        {"messages": [{"role": "system", "content": "You are verbose."}, BASE["messages"][1]]},
        {"temperature": 0.8},
        {"top_p": 1},
        {"tools": []},
        {"tools": [{"type": "function", "function": {"name": "search", "parameters": {}}}]},
        {"seed": 7},
        {"max_tokens": 10},
    ],
)
def test_anything_the_model_sees_changes_the_key(keyer: CacheKeyer, change: dict[str, Any]) -> None:
    assert keyer.key(dumps({**BASE, **change})) != keyer.key(dumps(BASE))


def test_scope_and_seed_change_the_key(keyer: CacheKeyer) -> None:
    body = dumps(BASE)
    keys = {
        keyer.key(body),
        keyer.key(body, scope="org-a/proj"),
        keyer.key(body, scope="org-b/proj"),
        keyer.key(body, scope="org-a/proj", seed=""),
        keyer.key(body, scope="org-a/proj", seed="1"),
        keyer.key(body, scope="org-a/proj", seed="2"),
        keyer.key(body, scope="org-a/proj1", seed=None),
        keyer.key(body, scope="org-a/proj", seed="1", ignore_keys=["model"]),
    }
    assert len(keys) == 8


def test_large_bodies_key_the_same_as_python(keyer: CacheKeyer) -> None:
    big = {**BASE, "messages": [{"role": "user", "content": "word " * 30_000}]}
    data = dumps(big)
    assert len(data) > 100_000
    assert keyer.key(data, scope="s") == python_key(python_canonical(big), "s", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1, 2]", "request body must be a JSON object, got an array"),
        (b'"text"', "request body must be a JSON object, got a string"),
        (b'{"a": }', "request body is not valid JSON: expected value at line 1 column 7"),
    ],
)
def test_bodies_that_are_not_json_objects(keyer: CacheKeyer, data: bytes, message: str) -> None:
    for call in (keyer.key, keyer.canonical):
        with pytest.raises(InvalidJson) as raised:
            call(data)
        assert str(raised.value) == message


def test_ignore_keys_must_be_a_sequence_of_str(keyer: CacheKeyer) -> None:
    with pytest.raises(TypeError):
        keyer.key(b"{}", ignore_keys="model")


json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
json_bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def reversed_order(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_order(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_order(item) for item in value]
    return value


@given(json_bodies)
def test_canonical_form_matches_python_for_any_body(obj: dict[str, Any]) -> None:
    keyer = CacheKeyer()
    assert keyer.canonical(dumps(obj, ensure_ascii=False)) == python_canonical(obj)


@given(json_bodies, st.text(max_size=10), st.none() | st.text(max_size=10))
def test_key_ignores_key_order_and_whitespace(
    obj: dict[str, Any], scope: str, seed: str | None
) -> None:
    keyer = CacheKeyer()
    key = keyer.key(dumps(obj), scope=scope, seed=seed)
    assert keyer.key(dumps(reversed_order(obj), indent=1), scope=scope, seed=seed) == key
    assert key == python_key(python_canonical(obj), scope, seed)
