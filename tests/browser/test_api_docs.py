"""The integrator API's docs page in Chromium: Swagger UI from this site's own static files,
rendered under the site's Content-Security-Policy without a single violation."""

from playwright.sync_api import expect

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def test_the_api_docs_render_every_endpoint_without_a_policy_violation(browser_page, live_server):
    requests_seen = []
    browser_page.on("request", lambda request: requests_seen.append(request.url))
    browser_page.add_init_script(RECORD_VIOLATIONS)

    browser_page.goto("/api/docs/")

    operations = browser_page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=15_000)
    text = browser_page.locator(".swagger-ui").inner_text()
    for path in (
        "/api/v1/merchants/",
        "/api/v1/merchants/{merchant_slug}/credentials/",
        "/api/v1/merchants/{merchant_slug}/credentials/{provider}/{mode}/secret/",
    ):
        assert path in text
    assert browser_page.evaluate("window.__violations") == []
    # Nothing from a CDN: every asset comes from this site.
    assert all(url.startswith(live_server.url) for url in requests_seen), requests_seen
