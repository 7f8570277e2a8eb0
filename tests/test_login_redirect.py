"""Where the login page sends the browser afterwards: somewhere on this hub, never elsewhere.

``/login?next=...`` is followed after signing in through the form and at once when the
browser arrives already signed in. Browsers read ``/\\host`` and ``/<tab>/host`` as
``//host``, another origin, so each ``next`` below is tried in real Chromium both
ways; every request for another host is stopped in the browser (the test never leaves
loopback) and counted as a failure. The hub builds ``next`` itself when it sends a
signed-out browser to the login page (``hub.web.session.to_login``): its rule is
tested here too, and held against Chromium's own URL parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError
from starlette.requests import Request

from hub.accounts import users
from hub.web.session import local_path, to_login
from tests.browser import chromium, log_in, new_page
from tests.system import System

ADMIN_PASSWORD = "operator-password"
#: ``next`` values that a browser resolves to another origin, or to no page at all
ELSEWHERE = {
    "backslash": "/\\evil.example",
    "encoded-tab": "/%09/evil.example",
    "two-slashes": "//evil.example",
    "absolute": "https://evil.example/",
    "tab": "/\t/evil.example",
    "javascript": "javascript:alert(1)",
    # this origin, but the path "//evil.example": another origin once followed as a link
    "dot-segment": "/.//evil.example",
}
ON_THIS_HUB = "/dashboard?x=1#y"
#: more that the hub's own rule must refuse, and some plain paths it keeps
REFUSED = [
    *(target for name, target in ELSEWHERE.items() if name != "encoded-tab"),  # "/\t/..." is in
    "/..//evil.example",
    "/%2E//evil.example",
    "\\\\evil.example",
    " //evil.example",
    "\n//evil.example",
    "/\n/evil.example",
    "/dashboard/../\\evil.example",
    "http:evil.example",
    "",
]
KEPT = [
    "/remote",
    "/dashboard?x=1#y",
    "/dashboard/speakers/my speaker",
    "/remote?q=a\\b",
    # as text: to_login writes it "/%2509/...", which the login page reads back as this path
    "/%09/evil.example",
]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("login-redirect"))
    users.add_user(sysm.db, "operator", ADMIN_PASSWORD, admin=True)
    with sysm.running():
        yield sysm


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stay_on(context: BrowserContext, hub: str, stopped: list[str]) -> None:
    """Stop every request for another origin, noting its address in ``stopped``."""

    def handle(route: Route) -> None:
        if origin(route.request.url) == hub:
            route.continue_()
        else:
            stopped.append(route.request.url)
            route.abort()

    context.route("**/*", handle)


@dataclass
class Visit:
    """A browser about to open the login page, signed in already or not; the requests
    stopped on their way to another host and the dialogs opened (none expected)."""

    page: Page
    signed_in: bool
    stopped: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def login_with_next(self, system: System, next_value: str) -> str:
        """Open ``/login?next=next_value`` (signing in with the form if need be) and
        return the address the page settles on once it has left the login page."""
        # '%' kept as it is, so "/%09/..." reaches the page as the issue gives it
        self.page.goto(f"{system.url}/login?next={quote(next_value, safe='/%:')}")
        if not self.signed_in:
            self.page.get_by_label("Account name").fill("operator")
            self.page.get_by_label("Password").fill(ADMIN_PASSWORD)
            self.page.get_by_role("button", name="Sign in").click()
        try:
            self.page.wait_for_url(lambda url: not url.startswith(f"{system.url}/login"))
        except PlaywrightError as exc:
            if self.stopped:  # the navigation stay_on refused
                raise AssertionError(f"the page set off for {self.stopped}") from exc
            raise
        self.page.wait_for_load_state()
        return self.page.url


@pytest.fixture(params=["form", "signed-in"])
def visit(request: pytest.FixtureRequest, system: System, browser: Browser) -> Iterator[Visit]:
    context, page = new_page(browser, phone=False)
    v = Visit(page, signed_in=request.param == "signed-in")
    stay_on(context, system.url, v.stopped)

    def dialog(d: Dialog) -> None:
        v.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    if v.signed_in:
        log_in(page, system.url, "operator", ADMIN_PASSWORD)
    try:
        yield v
    finally:
        context.close()


@pytest.mark.integration
@pytest.mark.parametrize("next_value", ELSEWHERE.values(), ids=ELSEWHERE.keys())
def test_a_next_elsewhere_goes_to_the_remote(system: System, visit: Visit, next_value: str) -> None:
    landed = visit.login_with_next(system, next_value)
    assert origin(landed) == system.url, f"left the hub for {landed}"
    assert visit.stopped == [], f"the page asked for {visit.stopped}"
    assert visit.dialogs == []
    expect(visit.page).to_have_url(f"{system.url}/remote")


@pytest.mark.integration
def test_a_next_on_this_hub_is_followed_with_its_query_and_fragment(
    system: System, visit: Visit
) -> None:
    assert visit.login_with_next(system, ON_THIS_HUB) == f"{system.url}{ON_THIS_HUB}"
    expect(visit.page.get_by_role("heading", name="Fleet", level=1)).to_be_visible()
    assert visit.stopped == []


# --- the hub's own rule, for the ``next`` it builds ---------------------------------


@pytest.mark.parametrize("target", REFUSED)
def test_the_hub_refuses_a_next_a_browser_reads_as_elsewhere(target: str) -> None:
    assert local_path(target) is None


@pytest.mark.parametrize("target", KEPT)
def test_the_hub_keeps_a_plain_path_of_its_own(target: str) -> None:
    assert local_path(target) == target


def page_request(path: str, query: str = "") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("127.0.0.1", 8080),
            "path": path,
            "query_string": query.encode(),
            "headers": [],
        }
    )


def test_to_login_comes_back_to_the_page_asked_for() -> None:
    back = to_login(page_request("/dashboard/users", "x=1&y=2"))
    assert back.status_code == 303
    assert back.headers["location"] == "/login?next=/dashboard/users%3Fx%3D1%26y%3D2"


@pytest.mark.parametrize(
    "path", ["/\\evil.example", "/\t/evil.example", "//evil.example", "/.//evil.example"]
)
def test_to_login_never_names_a_page_elsewhere(path: str) -> None:
    location = to_login(page_request(path)).headers["location"]
    assert urlsplit(location).path == "/login"
    for target in parse_qs(urlsplit(location).query).get("next", []):
        assert local_path(target) == target, location


@pytest.mark.integration
def test_the_hubs_rule_is_never_looser_than_the_browsers(system: System, browser: Browser) -> None:
    """Whatever the hub keeps, Chromium's URL parser resolves to the hub, with a path
    that does not start with two slashes."""
    context, page = new_page(browser, phone=False)
    try:
        page.goto(f"{system.url}/login")
        for target in [*REFUSED, *KEPT]:
            resolved = page.evaluate(
                """(n) => { try { const u = new URL(n, location.origin);
                   return {origin: u.origin, path: u.pathname}; } catch { return null; } }""",
                target,
            )
            here = resolved is not None and resolved["origin"] == system.url
            if local_path(target) is not None:
                assert here, (target, resolved)
                assert not resolved["path"].startswith("//"), (target, resolved)
    finally:
        context.close()
