"""/docs in a real headless Chromium: it renders offline, lists the contract, and Try it out works.

Needs Debian's chromium at CHROMIUM (default /usr/bin/chromium); .ci/run installs it.
Run with `python -m pytest e2e`. The screenshot goes to test-output/docs.png.
"""

import os
import sys
import threading
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from app import create_app  # noqa: E402
from contract_endpoints import CONTRACT_ENDPOINTS  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = os.path.join(ROOT, "test-output", "docs.png")
USER = {"username": "viewer", "email": "viewer@example.com", "password": "password123"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("e2e") / "e2e.db"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "JWT_SECRET_KEY": os.urandom(32).hex(),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
            "RATELIMIT_ENABLED": False,
            "RESEND_API_KEY": None,
            "AUTO_MIGRATE": True,
        }
    )
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def page(server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        page.requests_seen = []
        page.on("request", lambda request: page.requests_seen.append(request.url))
        page.policy_violations = []
        page.expose_function("reportViolation", lambda violation: page.policy_violations.append(violation))
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', event =>"
            " reportViolation(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`))"
        )
        page.goto(f"{server}/docs/")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        yield page
        browser.close()


def rendered_operations(page):
    return {
        (block.locator(".opblock-summary-method").inner_text().strip().upper(),
         block.locator(".opblock-summary-path").get_attribute("data-path"))
        for block in page.locator(".opblock").all()
    }


def test_every_contract_endpoint_is_listed(page):
    expected = {(method, path) for method, path, _ in CONTRACT_ENDPOINTS}

    assert rendered_operations(page) == expected
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_the_page_requested_nothing_outside_the_server(page, server):
    origin = urlsplit(server).netloc
    outside = [
        url
        for url in page.requests_seen
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != origin
    ]

    assert page.requests_seen
    assert f"{server}/openapi.json" in page.requests_seen
    assert outside == []


def test_authorize_then_try_it_out_calls_this_server(page, server):
    import requests

    requests.post(f"{server}/register", json=USER, timeout=10).raise_for_status()
    credentials = {"username": USER["username"], "password": USER["password"]}
    login = requests.post(f"{server}/login", json=credentials, timeout=10).json()

    page.click("button.authorize")
    page.locator(".auth-container input").first.fill(login["access_token"])
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")
    me = page.locator(".opblock-get", has=page.locator('[data-path="/me"]'))
    me.locator(".opblock-summary").click()
    me.locator("button.try-out__btn").click()
    me.locator("button.execute").click()
    status = me.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=15_000)

    assert status.inner_text().strip() == "200"
    assert '"username": "viewer"' in me.locator(".live-responses-table tbody").inner_text()
    assert f"{server}/me" in page.requests_seen


def test_the_page_keeps_to_its_content_security_policy(page, server):
    """Runs after the others: the page, Authorize and Try it out broke no rule of the policy."""
    response = page.request.get(f"{server}/docs/")

    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert page.policy_violations == []
