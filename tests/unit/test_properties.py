"""Property-based tests (hypothesis) of the edges that take outside input: the
publish validator, the two wire-format decoders, the config loader and the search
query parser. Each either accepts a value that every later stage can carry, or
refuses it with the project's own exception: never anything else."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncevents_cli.config import BOUNDS, SETTINGS, load_config
from asyncevents_cli.errors import ConfigError, InputError
from asyncevents_cli.messages import MAX_STORE_ID, UUID_TEXT, MalformedMessage, RetryMessage, TriggerMessage
from asyncevents_cli.publishing import parse_data
from asyncevents_cli.strict_json import MAX_DEPTH, check_encodable

MODEST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any Python value json.dumps can write, including what strict JSON refuses:
# NaN and infinities, lone surrogates, huge integers.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(blacklist_categories=()), max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
nested_json = st.integers(min_value=1, max_value=3 * MAX_DEPTH).map(lambda n: "[" * n + "]" * n)
json_texts = values.map(lambda v: json.dumps(v)) | nested_json | st.text(max_size=200)


def carried(value: object) -> None:
    """What every accepted value must be: UTF-8 encodable JSON with finite numbers."""
    check_encodable(value)
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == value


@MODEST
@given(json_texts)
def test_publish_validator_accepts_only_what_can_be_carried(text: str) -> None:
    try:
        data = parse_data(text)
    except InputError as exc:
        assert "\n" not in exc.message
        return
    assert isinstance(data, dict)
    carried(data)
    assert TriggerMessage.decode(TriggerMessage("e", data, 0).encode()).arguments == data


trigger_shapes = st.tuples(
    st.text(max_size=30) | st.integers(),
    json_texts | values,
    st.integers() | st.floats() | st.text(max_size=25) | st.none() | st.booleans(),
).map(lambda t: json.dumps(list(t)).encode())


@MODEST
@given(st.binary(max_size=300) | trigger_shapes | json_texts.map(str.encode))
def test_trigger_decoder_decodes_or_refuses(body: bytes) -> None:
    try:
        message = TriggerMessage.decode(body)
    except MalformedMessage as exc:  # parked with this reason
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(message.event_name, str)
    assert 0 <= message.store_id <= MAX_STORE_ID
    carried(message.arguments)
    assert TriggerMessage.decode(message.encode()) == message


retry_shapes = st.fixed_dictionaries(
    {},
    optional={
        "subscription_id": st.integers() | st.floats() | st.text(max_size=25) | st.none(),
        "death_count": st.integers() | st.floats() | st.text(max_size=25) | st.none(),
        "content": json_texts | values,
        "uuid": st.uuids().map(str) | st.text(max_size=40) | st.none() | st.integers(),
    },
).map(lambda d: json.dumps(d).encode())


@MODEST
@given(st.binary(max_size=300) | retry_shapes | json_texts.map(str.encode))
def test_retry_decoder_decodes_or_refuses(body: bytes) -> None:
    try:
        message = RetryMessage.decode(body)
    except MalformedMessage as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert 1 <= message.subscription_id <= 2**63 - 1
    assert message.death_count >= 0
    assert UUID_TEXT.match(message.uuid)
    carried(message.payload)
    assert RetryMessage.decode(message.encode()) == message


env_values = (
    st.sampled_from(
        ["inf", "-inf", "nan", "1e308", "-1", "0", "1", "2.5", "3600", "true", "no", "", "amqp://h/", "notaurl"]
    )
    | st.text(max_size=12)
    | st.integers().map(str)
    | st.floats().map(str)
)


@MODEST
@given(
    st.dictionaries(
        st.sampled_from([f"AE_{s.name.upper()}" for s in SETTINGS if s.name != "database"]), env_values, max_size=4
    )
)
def test_config_loader_yields_bounded_settings_or_refuses(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "events.toml"
    path.write_text('[events."a"]\n')
    try:
        config = load_config(path, environ=env)
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message
        return
    for name, (low, high) in BOUNDS.items():
        value = getattr(config.settings, name)
        assert math.isfinite(value) and low <= value <= high
    policy = config.retry_policy
    for death in range(1, 4):
        assert math.isfinite(policy.delay_seconds(death))


toml_values = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=10)


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else "inf"
            if value == math.inf
            else "-inf"
            if value == -math.inf
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


@MODEST
@given(st.dictionaries(st.sampled_from([s.name for s in SETTINGS if s.name != "database"]), toml_values, max_size=4))
def test_config_file_yields_bounded_settings_or_refuses(tmp_path: Path, chosen: dict[str, object]) -> None:
    path = tmp_path / "events.toml"
    path.write_text("[settings]\n" + "".join(f"{k} = {toml_literal(v)}\n" for k, v in chosen.items()))
    try:
        config = load_config(path, environ={})
    except ConfigError as exc:
        assert exc.message and "\n" not in exc.message
        return
    for name, (low, high) in BOUNDS.items():
        assert low <= getattr(config.settings, name) <= high


query_words = st.sampled_from(
    [
        "data.a:",
        "success:",
        "event_name:",
        "*",
        "?",
        ":",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        " TO ",
        " AND ",
        " OR ",
        " NOT ",
        "-",
        "+",
        '"',
        "~",
        "^2",
        "*:*",
        "1",
        "x",
        "2026-01-01",
        "\\",
        " ",
    ]
)
queries = st.lists(query_words, max_size=12).map("".join) | st.text(max_size=40)


@MODEST
@given(queries)
def test_search_query_parser_parses_or_refuses(text: str) -> None:
    from asyncevents_cli.search.documents import build_schema
    from asyncevents_cli.search.query import parse_for_index

    try:
        parse_for_index(text, build_schema())
    except InputError as exc:
        assert exc.message and "\n" not in exc.message.strip()


# -- the consumer's shortcuts compute exactly what they replace ----------------


@MODEST
@given(st.text(max_size=40) | st.uuids().map(lambda u: u.hex), st.integers(min_value=1, max_value=2**63 - 1))
def test_delivery_uuid_is_the_uuid5_of_message_and_subscription(message_id: str, subscription_id: int) -> None:
    import uuid

    from asyncevents_cli.engine.decisions import UUID_NAMESPACE, delivery_uuid

    if message_id:
        assert delivery_uuid(message_id, subscription_id) == str(
            uuid.uuid5(UUID_NAMESPACE, f"{message_id}:{subscription_id}")
        )
    else:
        assert uuid.UUID(delivery_uuid(message_id, subscription_id)).version == 4


@MODEST
@given(values)
def test_a_body_built_from_the_content_is_the_serialized_body(payload: object) -> None:
    from asyncevents_cli.engine.decisions import body_of, encode_payload, serialize_body

    try:
        expected = serialize_body(payload)
    except ValueError as exc:  # NaN, infinities, lone surrogates: refused the same way
        try:
            body_of(encode_payload(payload))
        except ValueError as again:
            assert type(again) is type(exc)
            return
        raise AssertionError(f"body_of accepted what serialize_body refused: {exc}") from None
    assert body_of(encode_payload(payload)) == expected


@MODEST
@given(st.integers(min_value=0xD800, max_value=0xDFFF), st.booleans(), st.booleans())
def test_strict_json_refuses_every_lone_surrogate_escape(code: int, upper: bool, as_bytes: bool) -> None:
    """The fast path that skips `check_encodable` must not let one through, in any case of hex digits."""
    import pytest

    from asyncevents_cli.strict_json import JsonRejected, loads

    escape = f"\\u{code:04X}" if upper else f"\\u{code:04x}"
    text = f'{{"a": ["x{escape}"]}}'
    with pytest.raises(JsonRejected, match="surrogate"):
        loads(text.encode() if as_bytes else text)
    assert loads('["\\ud83d\\ude00"]') == ["\U0001f600"]  # a pair is one character, and fine
