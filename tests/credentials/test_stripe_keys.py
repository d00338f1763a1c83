"""Parsing Stripe keys: what is accepted, and the message for each refusal."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError

from credentials.models import Kind
from credentials.providers.stripe_keys import (
    MAX_KEY_LENGTH,
    MIN_BODY_LENGTH,
    PUBLISHABLE,
    StripeKey,
    check_same_mode,
    parse_publishable_key,
    parse_secret_key,
)
from tests.factories import fake_key


def refusal(parse, value) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse(value)
    return caught.value


def assert_refused(parse, value, *, code, says):
    error = refusal(parse, value)
    assert error.code == code
    assert says in error.message
    body = value.strip()
    assert body not in error.message
    if len(body) >= 24:
        assert body[8:-4] not in error.message


def encrypted_value() -> str:
    return Fernet(Fernet.generate_key()).encrypt(fake_key("sk_live_").encode()).decode()


# Accepted keys


@pytest.mark.parametrize("mode", ["test", "live"])
def test_publishable_key_is_parsed_with_its_mode(mode):
    value = fake_key(f"pk_{mode}_")

    key = parse_publishable_key(value)

    assert key == StripeKey(value=value, type=PUBLISHABLE, mode=mode)


@pytest.mark.parametrize(
    ("prefix", "kind", "mode"),
    [
        ("sk_test_", Kind.SECRET, "test"),
        ("sk_live_", Kind.SECRET, "live"),
        ("rk_test_", Kind.RESTRICTED, "test"),
        ("rk_live_", Kind.RESTRICTED, "live"),
    ],
)
def test_secret_and_restricted_keys_are_parsed_with_kind_and_mode(prefix, kind, mode):
    value = fake_key(prefix)

    key = parse_secret_key(value)

    assert (key.value, key.type, key.mode) == (value, kind, mode)


@pytest.mark.parametrize("padding", [" ", "\n", "\t", " \r\n ", "\u00a0"])
def test_surrounding_whitespace_is_trimmed_and_accepted(padding):
    value = fake_key("sk_test_")

    key = parse_secret_key(f"{padding}{value}{padding}")

    assert key.value == value


def test_body_of_exactly_the_minimum_length_is_accepted():
    value = fake_key("sk_test_", MIN_BODY_LENGTH)

    assert parse_secret_key(value).value == value


def test_key_of_exactly_the_maximum_length_is_accepted():
    value = fake_key("sk_live_", MAX_KEY_LENGTH - len("sk_live_"))
    assert len(value) == MAX_KEY_LENGTH

    assert parse_secret_key(value).value == value


# Refusals


@pytest.mark.parametrize(
    "make",
    [
        lambda: fake_key("sk_test_", 16) + " " + fake_key("", 16),
        lambda: fake_key("sk_test_", 16) + "\n" + fake_key("", 16),
        lambda: fake_key("sk_test_", 16) + "\t" + fake_key("", 16),
        lambda: fake_key("sk_test_", 16) + "\r\n" + fake_key("", 16),
    ],
    ids=["space", "newline", "tab", "crlf"],
)
def test_inner_whitespace_is_refused(make):
    assert_refused(parse_secret_key, make(), code="inner_whitespace", says="one unbroken line")


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f"], ids=["nul", "bel", "esc", "del"])
def test_control_character_is_refused_as_invisible(char):
    value = fake_key("sk_test_", 16) + char + fake_key("", 16)

    assert_refused(
        parse_secret_key, value, code="inner_whitespace", says="invisible character inside"
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: fake_key("sk_test_", 16) + "é" + fake_key("", 16),
        lambda: "“" + fake_key("sk_test_") + "”",
        # U+0430, the Cyrillic small a, looks like the Latin "a".
        lambda: fake_key("sk_test_", 16) + "\u0430" + fake_key("", 16),
        lambda: "\u0455k_test_" + fake_key("", 32),
        lambda: fake_key("sk_test_", 16) + "\u200b" + fake_key("", 16),
    ],
    ids=["accented", "curly-quotes", "cyrillic-body", "cyrillic-prefix", "zero-width-space"],
)
def test_non_ascii_characters_are_refused(make):
    assert_refused(parse_secret_key, make(), code="non_ascii", says="accented letters")


def test_secret_key_in_publishable_field_is_refused_as_swapped():
    error = refusal(parse_publishable_key, fake_key("sk_live_"))

    assert error.code == "swapped"
    assert "This is a secret key; paste it in the secret key field" in error.message


def test_restricted_key_in_publishable_field_is_refused_as_swapped():
    error = refusal(parse_publishable_key, fake_key("rk_test_"))

    assert error.code == "swapped"
    assert "This is a restricted key; paste it in the secret key field" in error.message


def test_publishable_key_in_secret_field_is_refused_as_swapped():
    error = refusal(parse_secret_key, fake_key("pk_test_"))

    assert error.code == "swapped"
    assert "This is a publishable key; paste it in the publishable key field" in error.message


@pytest.mark.parametrize(
    "value",
    [
        "MySecretKeyFromStripe",
        "sk_prod_" + "a" * 32,
        "SK_TEST_" + "a" * 32,
        "sk-test-" + "a" * 32,
        "whsec_" + "a" * 32,
        "acct_" + "a" * 16,
    ],
    ids=["text", "sk_prod", "upper-case", "dashes", "webhook-secret", "account-id"],
)
def test_value_that_is_not_a_stripe_key_is_refused(value):
    assert_refused(
        parse_secret_key,
        value,
        code="not_a_stripe_key",
        says="should start with sk_test_, sk_live_, rk_test_ or rk_live_",
    )


def test_value_that_is_not_a_publishable_key_names_the_publishable_prefixes():
    error = refusal(parse_publishable_key, "pk_prod_" + "a" * 32)

    assert error.code == "not_a_stripe_key"
    assert "not a Stripe publishable key: it should start with pk_test_ or pk_live_" in (
        error.message
    )


@pytest.mark.parametrize("quote", ['"', "'", "`"])
def test_key_in_quotation_marks_is_refused_with_advice_to_remove_them(quote):
    value = quote + fake_key("sk_test_") + quote

    assert_refused(parse_secret_key, value, code="quoted", says="Remove the quotation marks")


@pytest.mark.parametrize("prefix", ["sk_test_", "rk_live_", "pk_test_"])
def test_prefix_without_a_body_is_refused_as_too_short(prefix):
    parse = parse_publishable_key if prefix.startswith("pk") else parse_secret_key

    error = refusal(parse, prefix)

    assert error.code == "too_short"
    assert "only the beginning" in error.message


@pytest.mark.parametrize("parse", [parse_publishable_key, parse_secret_key])
def test_encrypted_value_is_refused_in_either_field(parse):
    assert_refused(
        parse, encrypted_value(), code="encrypted_value", says="looks like an encrypted value"
    )


@pytest.mark.parametrize("prefix", ["sk_test_", "pk_live_"])
def test_body_one_shorter_than_the_minimum_is_refused(prefix):
    parse = parse_publishable_key if prefix.startswith("pk") else parse_secret_key
    value = fake_key(prefix, MIN_BODY_LENGTH - 1)

    assert_refused(parse, value, code="too_short", says="this one has 23")


def test_key_longer_than_the_maximum_is_refused():
    value = fake_key("sk_test_", MAX_KEY_LENGTH - len("sk_test_") + 1)

    assert_refused(
        parse_secret_key, value, code="too_long", says="256 characters long, more than any"
    )


@pytest.mark.parametrize("char", ["-", "_", ".", "=", "/", "+"])
def test_body_with_other_than_letters_and_digits_is_refused(char):
    value = fake_key("sk_test_", 16) + char + fake_key("", 16)

    assert_refused(
        parse_secret_key, value, code="invalid_characters", says="has only letters and digits"
    )


# Modes


@pytest.mark.parametrize("mode", ["test", "live"])
def test_keys_of_the_same_mode_pass(mode):
    publishable = parse_publishable_key(fake_key(f"pk_{mode}_"))
    secret = parse_secret_key(fake_key(f"sk_{mode}_"))

    check_same_mode(publishable=publishable, secret=secret)


@pytest.mark.parametrize(
    ("publishable_prefix", "secret_prefix", "says"),
    [
        (
            "pk_test_",
            "sk_live_",
            "The secret key is a live key but the publishable key is a test key",
        ),
        (
            "pk_live_",
            "sk_test_",
            "The secret key is a test key but the publishable key is a live key",
        ),
        (
            "pk_live_",
            "rk_test_",
            "The restricted key is a test key but the publishable key is a live key",
        ),
    ],
)
def test_keys_of_different_modes_are_refused_saying_which_is_which(
    publishable_prefix, secret_prefix, says
):
    publishable = parse_publishable_key(fake_key(publishable_prefix))
    secret = parse_secret_key(fake_key(secret_prefix))

    with pytest.raises(ValidationError) as caught:
        check_same_mode(publishable=publishable, secret=secret)

    assert caught.value.code == "mode_mismatch"
    assert says in caught.value.message


# What a parsed key shows


@pytest.mark.parametrize(
    ("prefix", "hint_prefix"),
    [("sk_live_", "sk_live_…"), ("rk_test_", "rk_test_…"), ("pk_test_", "pk_test_…")],
)
def test_hint_shows_the_prefix_and_the_last_four_characters(prefix, hint_prefix):
    value = fake_key(prefix, 28) + "abcd"
    parse = parse_publishable_key if prefix.startswith("pk") else parse_secret_key

    assert parse(value).hint == f"{hint_prefix}abcd"


def test_repr_and_str_show_the_hint_but_never_the_key():
    value = fake_key("sk_live_", 28) + "wxyz"
    key = parse_secret_key(value)

    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
        assert value not in shown
        assert value[8:-4] not in shown
        assert "sk_live_…wxyz" in shown


@pytest.mark.parametrize("text", ["my secret key", "Bearer sk_test_" + "a" * 30, "see attached"])
def test_text_with_spaces_that_is_not_a_key_gets_the_not_a_key_message(text):
    with pytest.raises(ValidationError) as refused:
        parse_secret_key(text)

    assert refused.value.code == "not_a_stripe_key"
    assert "should start with sk_test_, sk_live_, rk_test_ or rk_live_" in refused.value.message
