"""Recognising a key in free text however it is dressed up (issue #12 finding 5, #16 item 2)."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.redaction import WITHHELD, contains_secret, normalise, redact
from tests.factories import fake_key

BODY = "4eC39HqLyjWDarjtT1zdp7dc"
FULL_WIDTH = str.maketrans(
    {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}  # ASCII to full-width forms
)

KEY_VARIANTS = {
    "plain": f"sk_live_{BODY}",
    "restricted": f"rk_test_{BODY}",
    "space after the prefix": f"sk_test_ {BODY}",
    "spaces and a newline": f"sk_live_ \n\t{BODY}",
    "non-breaking space": f"sk_live_\u00a0{BODY}",
    "zero-width space": f"sk_test_\u200b{BODY}",
    "zero-width joiner inside the prefix": f"sk\u200d_live_{BODY}",
    "soft hyphen": f"sk_live_\u00ad{BODY}",
    "byte order mark": f"\ufeffsk_live_{BODY}",
    "control character": f"sk_live_\x07{BODY}",
    "upper case": f"SK_LIVE_{BODY.upper()}",
    "mixed case": f"Sk_LiVe_{BODY}",
    "full width": f"sk_live_{BODY}".translate(FULL_WIDTH),
    "Fernet token": "gAAAAABl" + "Zx9_-" * 8,
    "Kashier secret key": "0123456789abcdef" * 2 + "$" + "fedcba9876543210" * 6,
    "Kashier secret key from a .env file": "0123456789abcdef" * 2 + "\\$" + "ab" * 24,
    "Keyhouse API token": "kh_q4zt7m2kxa_" + "3Jv-_x9" * 6,
    "webhook signing secret": "whsec_" + "Zx9_-" * 8,
}


@pytest.mark.parametrize("text", KEY_VARIANTS.values(), ids=KEY_VARIANTS.keys())
def test_a_key_is_recognised_however_it_is_dressed_up(text):
    assert contains_secret(f"Call us on +44 20 ({text}) please")


@pytest.mark.parametrize("text", KEY_VARIANTS.values(), ids=KEY_VARIANTS.keys())
def test_redact_withholds_every_dressed_up_key(text):
    redacted = redact(f"before {text} after")

    assert redacted == f"before {WITHHELD} after"
    assert not contains_secret(redacted)


@pytest.mark.parametrize(
    "text",
    [
        "Café Müller, 12 Rue de la Paix",
        "+44 20 7946 0958",
        "https://example.com/shop",
        "Paste your sk_live_ key only in the key fields",
        fake_key("pk_live_"),  # publishable keys are public by design
        "sk_live_short",
        "",
    ],
)
def test_ordinary_text_and_publishable_keys_are_not_taken_for_secrets(text):
    assert not contains_secret(text)
    assert redact(text) == text


def test_normalise_keeps_ordinary_whitespace_and_drops_invisible_characters():
    assert normalise("a\u200bb c\nd\u2060e") == "ab c\nde"
    assert normalise("sk_live_".translate(FULL_WIDTH)) == "sk_live_"


def full_rule(text: str) -> str:
    return "".join(
        char
        for char in unicodedata.normalize("NFKC", text)
        if char.isspace() or unicodedata.category(char) not in {"Cf", "Cc"}
    )


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_ascii_text_is_normalised_as_by_the_full_rule(text):
    assert normalise(text) == full_rule(text)


@given(st.text())
def test_any_text_is_normalised_as_by_the_full_rule(text):
    assert normalise(text) == full_rule(text)


@given(st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cf", "Cs"])))
def test_printable_text_beyond_ascii_is_normalised_as_by_the_full_rule(text):
    assert normalise(f"{text} sk_live_…4242") == full_rule(f"{text} sk_live_…4242")
