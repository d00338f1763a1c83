"""At phone width (390x844) no page is wider than the screen: every portal page (each merchant
route with real objects, as tests/portal_routes.py lists them), the pages outside a merchant,
the signed-out pages and the refusal pages. Wide tables scroll inside their own area."""

from django.urls import reverse

from tests.browser.conftest import account_pages, portal_pages, sign_in, signed_out_pages
from tests.factories import MembershipFactory, default_role

# What sticks out, to name in the failure: the widest elements reaching past the right edge.
_OVERFLOW = """() => {
    const width = window.innerWidth;
    const past = [...document.querySelectorAll("body *")]
        .filter(element => element.getBoundingClientRect().right > width + 0.5)
        .filter(element => !element.closest(".table-wrap, [role=region]"))
        .map(element => {
            const classes = [...element.classList].map(name => "." + name).join("");
            return `${element.tagName.toLowerCase()}${classes} to ${Math.round(
                element.getBoundingClientRect().right)}px`;
        });
    return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: width,
        past: past.slice(0, 5),
    };
}"""


def wider_than_the_screen(page, addresses, *, status: int = 200) -> dict[str, str]:
    """Open each address; return, by address, how the pages that are wider than the screen
    overflow (only those)."""
    found = {}
    for address in addresses:
        response = page.goto(address)
        assert response.status == status, f"{address} answered {response.status}"
        measured = page.evaluate(_OVERFLOW)
        if measured["scrollWidth"] > measured["innerWidth"]:
            found[address] = (
                f"{measured['scrollWidth']}px wide on a {measured['innerWidth']}px screen; "
                f"past the edge: {', '.join(measured['past']) or 'nothing named'}"
            )
    return found


def report(found: dict[str, str]) -> str:
    return "\n".join(f"{address}: {overflow}" for address, overflow in found.items())


def test_no_portal_page_is_wider_than_a_phone_screen(phone_page, demo):
    pages = portal_pages(demo.merchant, demo.owner) + account_pages()
    sign_in(phone_page, demo.owner)

    found = wider_than_the_screen(phone_page, pages)

    assert not found, report(found)


def test_no_signed_out_page_is_wider_than_a_phone_screen(phone_page, demo):
    found = wider_than_the_screen(phone_page, signed_out_pages(demo.merchant, demo.owner))

    assert not found, report(found)


def test_refusal_pages_are_no_wider_than_a_phone_screen(phone_page, demo):
    viewer = MembershipFactory(merchant=demo.merchant, role=default_role("view-only")).user
    sign_in(phone_page, viewer)

    refused = wider_than_the_screen(
        phone_page,
        [reverse("credentials:submit", kwargs={"slug": demo.merchant.slug})],
        status=403,
    )
    unknown = wider_than_the_screen(
        phone_page,
        [reverse("credentials:merchant", kwargs={"slug": demo.other_merchant.slug})],
        status=404,
    )

    assert not (refused | unknown), report(refused | unknown)
