"""HeaderExtractor through the binding: str pairs (as granian passes them) and bytes pairs."""

import pytest

from floopy._native import FloopyHeaders, HeaderExtractor
from floopy.errors import BadRequest, InvalidHeader


@pytest.fixture(scope="module")
def extractor() -> HeaderExtractor:
    return HeaderExtractor()


def test_limits_are_readable() -> None:
    assert (HeaderExtractor().max_value_len, HeaderExtractor().max_properties) == (4096, 64)
    custom = HeaderExtractor(max_value_len=10, max_properties=2)
    assert (custom.max_value_len, custom.max_properties) == (10, 2)
    assert repr(custom) == "HeaderExtractor(max_value_len=10, max_properties=2)"


def test_no_headers(extractor: HeaderExtractor) -> None:
    headers = extractor.extract([])
    assert isinstance(headers, FloopyHeaders)
    assert headers.api_key is None
    assert headers.properties == {}
    assert headers.fallbacks == []
    assert headers.cache_ignore_keys == []
    assert headers.cache_enabled is None
    assert headers.cache_advanced is False
    assert headers.cache_bucket_max_size is None
    assert headers.cache_max_age is None
    assert headers.llm_security_enabled is None
    assert repr(headers) == "FloopyHeaders()"


def test_every_header_is_read(extractor: HeaderExtractor) -> None:
    headers = extractor.extract(
        [
            ("host", "gateway.local"),
            ("authorization", "Bearer sk-floopy-abc"),
            ("floopy-session-id", "s-1"),
            ("floopy-session-name", "Checkout"),
            ("floopy-session-path", "/cart/pay"),
            ("floopy-project-id", "proj-9"),
            ("floopy-user-id", "user-3"),
            ("floopy-property-Team", "search"),
            ("x-floopy-property-env", "prod"),
            ("floopy-model-override", "gpt-4o-mini"),
            ("floopy-routing-rule", "cheap-first"),
            ("floopy-fallback", "claude-sonnet, gemini-flash,,"),
            ("floopy-cache-enabled", "true"),
            ("floopy-cache-advanced", "1"),
            ("floopy-cache-seed", "v2"),
            ("floopy-cache-bucket-max-size", "5"),
            ("floopy-cache-ignore-keys", "temperature,  seed"),
            ("cache-control", "no-transform, max-age=3600"),
            ("floopy-llm-security-enabled", "False"),
            ("user-agent", "OpenAI/Python 1.54.0"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
        ]
    )
    assert headers.api_key == "sk-floopy-abc"
    assert (headers.session_id, headers.session_name, headers.session_path) == (
        "s-1",
        "Checkout",
        "/cart/pay",
    )
    assert headers.project_id == "proj-9"
    assert headers.user_id == "user-3"
    assert headers.properties == {"team": "search", "env": "prod"}
    assert headers.model_override == "gpt-4o-mini"
    assert headers.routing_rule == "cheap-first"
    assert headers.fallbacks == ["claude-sonnet", "gemini-flash"]
    assert headers.cache_enabled is True
    assert headers.cache_advanced is True
    assert headers.cache_seed == "v2"
    assert headers.cache_bucket_max_size == 5
    assert headers.cache_ignore_keys == ["temperature", "seed"]
    assert headers.cache_max_age == 3600
    assert headers.llm_security_enabled is False
    assert headers.user_agent == "OpenAI/Python 1.54.0"
    assert headers.forwarded_for == "203.0.113.9"


def test_bytes_pairs_and_mixed_pairs_read_the_same(extractor: HeaderExtractor) -> None:
    as_str = extractor.extract([("X-Floopy-Session-Id", "s"), ("x-api-key", "k")])
    as_bytes = extractor.extract([(b"X-Floopy-Session-Id", b"s"), (b"x-api-key", b"k")])
    mixed = extractor.extract([(b"X-Floopy-Session-Id", "s"), ("x-api-key", b"k")])
    assert as_str == as_bytes == mixed
    assert as_str.session_id == "s"
    assert as_str.api_key == "k"


def test_any_iterable_of_pairs(extractor: HeaderExtractor) -> None:
    pairs = {"floopy-user-id": "u", "floopy-project-id": "p"}.items()
    headers = extractor.extract(pair for pair in pairs)
    assert (headers.user_id, headers.project_id) == ("u", "p")


def test_bearer_wins_over_x_api_key_and_other_schemes_are_ignored(
    extractor: HeaderExtractor,
) -> None:
    assert extractor.extract([("x-api-key", "b"), ("Authorization", "BEARER a")]).api_key == "a"
    assert extractor.extract([("authorization", "Basic Zm9v"), ("x-api-key", "b")]).api_key == "b"
    assert extractor.extract([("authorization", "Basic Zm9v")]).api_key is None


@pytest.mark.parametrize("directive", ["no-store", "no-cache", "private, NO-STORE"])
def test_no_store_turns_the_cache_off_when_floopy_does_not_say(
    extractor: HeaderExtractor, directive: str
) -> None:
    assert extractor.extract([("cache-control", directive)]).cache_enabled is False
    explicit = [("cache-control", directive), ("floopy-cache-enabled", "true")]
    assert extractor.extract(explicit).cache_enabled is True


def test_properties_dict_is_a_fresh_copy(extractor: HeaderExtractor) -> None:
    headers = extractor.extract([("floopy-property-a", "1")])
    headers.properties["b"] = "2"
    assert headers.properties == {"a": "1"}


def test_headers_are_frozen(extractor: HeaderExtractor) -> None:
    headers = extractor.extract([("floopy-user-id", "u")])
    with pytest.raises(AttributeError):
        headers.user_id = "other"  # type: ignore[misc]


def test_repr_hides_the_api_key(extractor: HeaderExtractor) -> None:
    headers = extractor.extract(
        [
            ("authorization", "Bearer sk-secret"),
            ("floopy-user-id", "u"),
            ("floopy-cache-enabled", "0"),
        ]
    )
    text = repr(headers)
    assert "sk-secret" not in text
    assert text == 'FloopyHeaders(api_key=<hidden>, user_id="u", cache_enabled=False)'


@pytest.mark.parametrize(
    ("name", "value", "param", "message"),
    [
        ("Floopy-Cache-Enabled", "yes", "floopy-cache-enabled", "must be true or false"),
        (
            "x-floopy-llm-security-enabled",
            "",
            "x-floopy-llm-security-enabled",
            "must be true or false",
        ),
        (
            "floopy-cache-bucket-max-size",
            "0",
            "floopy-cache-bucket-max-size",
            "must be a positive integer",
        ),
        (
            "floopy-cache-bucket-max-size",
            "-3",
            "floopy-cache-bucket-max-size",
            "must be a positive integer",
        ),
        (
            "Cache-Control",
            "max-age=-1",
            "cache-control",
            "has a max-age that is not a number of seconds",
        ),
        (
            "floopy-property-",
            "x",
            "floopy-property-",
            "has no property name after `floopy-property-`",
        ),
        ("floopy-user-id", "a\nb", "floopy-user-id", "contains a control character"),
        ("authorization", "Bearer \x00", "authorization", "contains a control character"),
        ("floopy-session-id", "x" * 4097, "floopy-session-id", "is longer than 4096 bytes"),
    ],
)
def test_bad_values_name_their_header(
    extractor: HeaderExtractor, name: str, value: str, param: str, message: str
) -> None:
    with pytest.raises(InvalidHeader) as raised:
        extractor.extract([(name, value)])
    assert raised.value.param == param
    assert str(raised.value) == f"header `{param}` {message}"
    assert isinstance(raised.value, BadRequest) and isinstance(raised.value, ValueError)


def test_non_utf8_values_are_refused_as_bytes_and_as_surrogates(extractor: HeaderExtractor) -> None:
    for value in (b"caf\xe9", "caf\udce9"):
        with pytest.raises(InvalidHeader, match="is not valid UTF-8") as raised:
            extractor.extract([("user-agent", value)])
        assert raised.value.param == "user-agent"


def test_the_length_limit_counts_utf8_bytes() -> None:
    extractor = HeaderExtractor(max_value_len=4)
    assert extractor.extract([("floopy-user-id", "éé")]).user_id == "éé"
    with pytest.raises(InvalidHeader, match="longer than 4 bytes"):
        extractor.extract([("floopy-user-id", "ééé")])


def test_too_many_properties() -> None:
    extractor = HeaderExtractor(max_properties=3)
    pairs = [(f"floopy-property-p{i}", "v") for i in range(3)]
    assert len(extractor.extract(pairs).properties) == 3
    with pytest.raises(InvalidHeader) as raised:
        extractor.extract([*pairs, ("floopy-property-p3", "v")])
    assert raised.value.param == "floopy-property-p3"


def test_headers_we_do_not_read_are_not_checked() -> None:
    extractor = HeaderExtractor(max_value_len=3)
    pairs = [("cookie", "\x00" * 10), (b"x-custom", b"\xff\xfe"), ("floopy-unknown", "\n")]
    assert extractor.extract(pairs) == extractor.extract([])


def test_a_read_header_the_server_could_not_decode_is_refused(extractor: HeaderExtractor) -> None:
    # granian keeps the name of a header whose value is not printable ASCII, drops the value.
    kept = [("floopy-user-id", "u1")]
    with pytest.raises(InvalidHeader, match="outside printable ASCII") as raised:
        extractor.extract(kept, names=["floopy-user-id", "x-floopy-session-name"])
    assert raised.value.param == "x-floopy-session-name"


def test_a_dropped_header_the_gateway_does_not_read_is_ignored(
    extractor: HeaderExtractor,
) -> None:
    kept = [("Floopy-User-Id", "u1")]
    headers = extractor.extract(kept, names=[b"floopy-user-id", "x-custom", "cookie"])
    assert headers.user_id == "u1"


@pytest.mark.parametrize("argument", ["max_value_len", "max_properties"])
def test_negative_limits_are_value_errors_naming_the_argument(argument: str) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} must not be negative, got -3$"):
        HeaderExtractor(**{argument: -3})


@pytest.mark.parametrize("bad", [[("a", 1)], [(1, "b")], ["ab"], 5])
def test_pairs_must_be_tuples_of_str_or_bytes(extractor: HeaderExtractor, bad: object) -> None:
    with pytest.raises(TypeError):
        extractor.extract(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [[("a",)], [("a", "b", "c")]])
def test_pairs_must_have_two_items(extractor: HeaderExtractor, bad: list[object]) -> None:
    with pytest.raises(ValueError, match="expected tuple of length 2"):
        extractor.extract(bad)  # type: ignore[arg-type]


def test_helicone_headers_are_aliases_and_floopy_headers_win() -> None:
    helicone = [
        ("Helicone-Session-Id", "s1"),
        ("Helicone-Session-Name", "Checkout"),
        ("Helicone-Session-Path", "/cart"),
        ("Helicone-User-Id", "u1"),
        ("Helicone-Property-Env", "prod"),
        ("Helicone-Cache-Enabled", "true"),
        ("Helicone-Cache-Seed", "seed"),
        ("Helicone-Cache-Bucket-Max-Size", "2"),
        ("Helicone-Fallback", "gpt-4o-mini"),
        ("Helicone-Auth", "Bearer sk-helicone"),
    ]
    headers = HeaderExtractor().extract(helicone)
    assert (headers.session_id, headers.session_name, headers.session_path) == (
        "s1",
        "Checkout",
        "/cart",
    )
    assert headers.user_id == "u1" and headers.properties == {"env": "prod"}
    assert headers.cache_enabled is True and headers.cache_seed == "seed"
    assert headers.cache_bucket_max_size == 2 and headers.fallbacks == ["gpt-4o-mini"]
    assert headers.api_key is None  # Helicone-Auth is Helicone's key, never ours
    floopy = [("floopy-user-id", "floopy"), ("floopy-property-env", "dev")]
    for pairs in (floopy + helicone, helicone + floopy):
        headers = HeaderExtractor().extract(pairs)
        assert headers.user_id == "floopy" and headers.properties == {"env": "dev"}
