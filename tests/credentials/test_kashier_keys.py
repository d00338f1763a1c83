"""Kashier's key form: what each field accepts, and the message for each refusal."""

import secrets

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string

from credentials.models import Kind
from credentials.providers import provider_for
from credentials.providers.base import SubmittedKeys
from credentials.providers.kashier import KashierKeysForm, KashierProvider
from credentials.providers.kashier_keys import (
    MAX_KEY_LENGTH,
    SHAPES,
    KashierSecret,
    parse_merchant_id,
    parse_payment_api_key,
    parse_secret_key,
)
from tests.factories import fake_key
from tests.fake_kashier import fake_payment_api_key, fake_secret_key


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
    if len(body) >= 12:
        assert body[4:-4] not in error.message


def form_data(**overrides) -> dict:
    data = {
        "merchant_id": "MID-3552-454",
        "secret_key": fake_secret_key(),
        "payment_api_key": fake_payment_api_key(),
        "mode": "test",
        "requested_integrations": ["online_payments"],
        "note": "",
    }
    data.update(overrides)
    return data


def encrypted_value() -> str:
    return Fernet(Fernet.generate_key()).encrypt(fake_secret_key().encode()).decode()


# Accepted values


@pytest.mark.parametrize(
    "value",
    [
        fake_secret_key(),
        fake_secret_key().upper(),
        f"{secrets.token_hex(16)}${secrets.token_hex(16)}",
    ],
    ids=["lower-case", "upper-case", "32-after-the-dollar"],
)
def test_secret_key_is_accepted_as_given(value):
    assert parse_secret_key(value) == KashierSecret(value)


@pytest.mark.parametrize("value", [fake_payment_api_key(), fake_payment_api_key().upper()])
def test_payment_api_key_is_accepted_with_its_case_kept(value):
    # The Payment API key is an HMAC key: changing its case would change every order hash.
    assert parse_payment_api_key(value).value == value


@pytest.mark.parametrize(
    ("value", "normalised"),
    [("MID-3552-454", "MID-3552-454"), ("mid-3552-454", "MID-3552-454"), ("Mid-0-1", "MID-0-1")],
)
def test_merchant_id_is_accepted_in_any_case_and_written_upper_case(value, normalised):
    assert parse_merchant_id(value) == normalised


@pytest.mark.parametrize("padding", [" ", "\n", "\t", " \r\n ", "\u00a0"])
def test_surrounding_whitespace_is_trimmed_from_every_field(padding):
    secret, payment_api_key = fake_secret_key(), fake_payment_api_key()

    assert parse_secret_key(f"{padding}{secret}{padding}").value == secret
    assert parse_payment_api_key(f"{padding}{payment_api_key}{padding}").value == payment_api_key
    assert parse_merchant_id(f"{padding}MID-12-34{padding}") == "MID-12-34"


def test_secret_repr_shows_only_the_hint():
    secret = fake_secret_key()

    parsed = parse_secret_key(secret)

    assert parsed.hint == f"{secret[:4]}…{secret[-4:]}"
    assert secret not in repr(parsed)
    assert secret not in str(parsed)


# Refusals any field makes

ANY_FIELD = [
    pytest.param(parse_secret_key, id="secret_key"),
    pytest.param(parse_payment_api_key, id="payment_api_key"),
    pytest.param(parse_merchant_id, id="merchant_id"),
]


@pytest.mark.parametrize("parse", ANY_FIELD)
def test_too_long_value_is_refused_with_its_length(parse):
    value = "a" * (MAX_KEY_LENGTH + 1)

    assert_refused(parse, value, code="too_long", says=f"{MAX_KEY_LENGTH + 1} characters long")


@pytest.mark.parametrize("parse", ANY_FIELD)
def test_non_ascii_value_is_refused_with_where_to_copy_it_again(parse):
    value = fake_secret_key()[:-1] + "é"

    assert_refused(parse, value, code="non_ascii", says="Copy it again from")


@pytest.mark.parametrize("parse", ANY_FIELD)
@pytest.mark.parametrize("quote", ['"', "'", "`"])
def test_quoted_value_is_refused_with_remove_the_quotation_marks(parse, quote):
    value = f"{quote}{fake_secret_key()}{quote}"

    assert_refused(parse, value, code="quoted", says="Remove the quotation marks")


@pytest.mark.parametrize("parse", ANY_FIELD)
@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER\t"])
def test_bearer_prefix_is_refused_with_paste_only_the_key(parse, prefix):
    value = prefix + fake_secret_key()

    assert_refused(parse, value, code="bearer_prefix", says="Remove “Bearer ” from the start")


@pytest.mark.parametrize("parse", ANY_FIELD)
def test_dollar_escaped_as_in_a_dotenv_file_is_refused_with_remove_the_backslash(parse):
    value = fake_secret_key().replace("$", "\\$")

    assert_refused(parse, value, code="escaped_dollar", says="Remove the backslash")


@pytest.mark.parametrize("parse", ANY_FIELD)
@pytest.mark.parametrize("prefix", ["sk_live_", "rk_test_", "pk_live_", "SK_TEST_"])
def test_stripe_key_is_refused_in_every_kashier_field(parse, prefix):
    value = fake_key(prefix)

    assert_refused(parse, value, code="stripe_key", says="This is a Stripe key")


@pytest.mark.parametrize("parse", ANY_FIELD)
def test_encrypted_value_is_refused_with_where_to_copy_the_key(parse):
    assert_refused(parse, encrypted_value(), code="encrypted_value", says="encrypted value")


@pytest.mark.parametrize("parse", ANY_FIELD)
@pytest.mark.parametrize("inside", [" ", "\n", "\t", "\x00"])
def test_whitespace_inside_is_refused_with_paste_as_one_line(parse, inside):
    secret = fake_secret_key()
    value = secret[:40] + inside + secret[40:]

    assert_refused(parse, value, code="inner_whitespace", says="one unbroken line")


# Refusals of the secret key


def test_payment_api_key_in_the_secret_key_field_is_sent_to_its_own_field():
    assert_refused(
        parse_secret_key,
        fake_payment_api_key(),
        code="payment_api_key_in_secret_field",
        says="paste it in the Payment API key field",
    )


def test_merchant_id_in_the_secret_key_field_is_sent_to_its_own_field():
    error = refusal(parse_secret_key, "MID-3552-454")

    assert error.code == "merchant_id_in_key_field"
    assert "paste it in the merchant ID field, and put the secret key here" in error.message


@pytest.mark.parametrize(
    "value",
    [
        secrets.token_hex(16),
        secrets.token_hex(16) + "$",
        f"{secrets.token_hex(16)}${secrets.token_hex(15)}a",
    ],
    ids=["no-dollar", "nothing-after-the-dollar", "31-after-the-dollar"],
)
def test_secret_key_cut_at_the_dollar_is_refused_with_copy_the_whole_key(value):
    assert_refused(parse_secret_key, value, code="incomplete_secret_key", says="Copy the whole key")


@pytest.mark.parametrize(
    "value",
    [
        "my-kashier-secret",
        f"{secrets.token_hex(15)}${secrets.token_hex(48)}",
        f"{secrets.token_hex(16)}${secrets.token_hex(47)}xz",
        f"{secrets.token_hex(16)}:{secrets.token_hex(48)}",
        f"{secrets.token_hex(16)}$${secrets.token_hex(48)}",
    ],
    ids=["words", "short-head", "not-hex-after", "colon-not-dollar", "two-dollars"],
)
def test_value_not_shaped_like_a_secret_key_is_refused_with_the_shape_and_where_to_copy(value):
    error = refusal(parse_secret_key, value)

    assert error.code == "not_a_kashier_secret_key"
    assert SHAPES["secret_key_shape"] in error.message
    assert "Integrate now → API keys" in error.message
    assert value not in error.message


# Refusals of the Payment API key


@pytest.mark.parametrize(
    "value",
    [fake_secret_key(), f"{secrets.token_hex(16)}${secrets.token_hex(8)}"],
    ids=["whole", "cut"],
)
def test_secret_key_in_the_payment_api_key_field_is_sent_to_its_own_field(value):
    assert_refused(
        parse_payment_api_key,
        value,
        code="secret_key_in_payment_field",
        says="paste it in the secret key field",
    )


@pytest.mark.parametrize(
    "value",
    [
        "11111",
        fake_payment_api_key()[:-1],
        fake_payment_api_key().replace("-", ""),
        "g" + fake_payment_api_key()[1:],
    ],
    ids=["short", "one-digit-missing", "no-dashes", "not-hex"],
)
def test_value_not_shaped_like_a_uuid_is_refused_as_a_payment_api_key(value):
    assert_refused(
        parse_payment_api_key,
        value,
        code="not_a_payment_api_key",
        says="five groups joined by dashes (8-4-4-4-12)",
    )


# Refusals of the merchant id


@pytest.mark.parametrize(
    ("value", "names"),
    [(fake_secret_key(), "the secret key"), (fake_payment_api_key(), "the Payment API key")],
)
def test_a_key_in_the_merchant_id_field_is_sent_to_its_own_field(value, names):
    error = refusal(parse_merchant_id, value)

    assert error.code == "key_in_merchant_id_field"
    assert f"This is {names}, not the merchant ID" in error.message
    assert value not in error.message


@pytest.mark.parametrize("value", ["3552-454", "MID-3552", "MID_3552_454", "MID-35a2-454", "ABC"])
def test_value_not_shaped_like_a_merchant_id_is_refused_with_the_shape(value):
    error = refusal(parse_merchant_id, value)

    assert error.code == "not_a_merchant_id"
    assert "MID-1234-567" in error.message
    assert "top of the Kashier merchant dashboard" in error.message


# The form


def test_form_asks_for_merchant_id_keys_and_mode_before_integrations_and_note():
    form = KashierKeysForm()

    assert list(form.fields) == [
        "merchant_id",
        "secret_key",
        "payment_api_key",
        "mode",
        "requested_integrations",
        "note",
    ]
    assert form.secret_fields == ("secret_key", "payment_api_key")


def test_every_key_field_says_where_to_find_it_in_the_dashboard():
    fields = KashierKeysForm().fields

    assert "top of the Kashier merchant dashboard" in fields["merchant_id"].help_text
    for name in ("secret_key", "payment_api_key"):
        assert "Kashier merchant dashboard under Integrate now → API keys" in (
            fields[name].help_text
        )


def test_valid_form_gives_the_keys_to_store():
    data = form_data(merchant_id=" mid-3552-454 ", mode="live")
    form = KashierKeysForm(data=data)

    assert form.is_valid(), form.errors
    keys = KashierProvider().submitted_keys(form.cleaned_data)

    assert keys == SubmittedKeys(
        provider="kashier",
        mode="live",
        kind=Kind.SECRET,
        secret=data["secret_key"],
        hint=f"{data['secret_key'][:4]}…{data['secret_key'][-4:]}",
        public_key="MID-3552-454",
        extra_secret=data["payment_api_key"],
    )
    assert data["secret_key"] not in repr(keys)
    assert data["payment_api_key"] not in repr(keys)


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("merchant_id", "Paste the merchant ID"),
        ("secret_key", "Paste the secret key"),
        ("payment_api_key", "Paste the Payment API key"),
        ("mode", "Choose Test or Live"),
    ],
)
def test_each_empty_field_is_required_with_a_message_saying_what_to_paste(field, says):
    form = KashierKeysForm(data=form_data(**{field: ""}))

    assert not form.is_valid()
    [error] = form.errors.as_data()[field]
    assert error.code == "required"
    assert says in error.message


def test_unknown_mode_is_refused():
    form = KashierKeysForm(data=form_data(mode="sandbox"))

    assert not form.is_valid()
    assert form.errors.as_data()["mode"][0].code == "invalid_choice"


def test_swapped_keys_are_each_sent_to_their_own_field_and_neither_is_shown_again():
    secret, payment_api_key = fake_secret_key(), fake_payment_api_key()
    form = KashierKeysForm(data=form_data(secret_key=payment_api_key, payment_api_key=secret))

    assert not form.is_valid()
    errors = form.errors.as_data()
    assert errors["secret_key"][0].code == "payment_api_key_in_secret_field"
    assert errors["payment_api_key"][0].code == "secret_key_in_payment_field"
    page = form.as_div()
    assert secret not in page
    assert payment_api_key not in page
    assert form.secret_cleared


def test_refused_merchant_id_is_not_shown_again_but_an_accepted_one_is():
    secret = fake_secret_key()
    refused = KashierKeysForm(data=form_data(merchant_id=secret, mode=""))
    accepted = KashierKeysForm(data=form_data(merchant_id="MID-3552-454", mode=""))

    assert not refused.is_valid()
    assert not accepted.is_valid()
    assert secret not in refused.as_div()
    assert 'value="MID-3552-454"' in accepted.as_div()


def test_accepted_secrets_are_not_shown_again_after_another_field_is_refused():
    data = form_data(mode="")
    form = KashierKeysForm(data=data)

    assert not form.is_valid()
    page = form.as_div()
    assert data["secret_key"] not in page
    assert data["payment_api_key"] not in page


def test_kashier_is_a_registered_provider_with_its_form_and_help():
    provider = provider_for("kashier")

    assert isinstance(provider, KashierProvider)
    assert provider.form_class is KashierKeysForm
    assert provider.help_template == "credentials/help/kashier.html"
    assert provider.public_key_label == "Merchant ID"
    assert provider.extra_secret_label == "Payment API key"
    assert "no call to check" in provider.extra_secret_checked
    assert "only its format was checked" in provider.extra_secret_checked


def test_help_says_where_each_value_is_that_modes_differ_and_what_is_checked():
    page = render_to_string(KashierProvider.help_template)

    assert page.startswith('<section class="card help"')
    assert "top of the dashboard" in page
    assert "<em>Integrate now</em> → <em>API keys</em>" in page
    assert "test keys and live keys are different keys" in page
    assert "never shown again" in page
    assert "only its format is checked" in page
