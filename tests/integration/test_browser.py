"""A real browser (headless Chromium, Debian's chromium and chromium-driver, driven by Selenium)
against the real server: Swagger UI renders, authorizes with a real login and runs
`GET /users/me`; ReDoc renders; neither asks another host for anything nor logs a console
error. A page from an allowed origin runs a preflighted conditional PATCH and reads `ETag` and
`X-Request-ID`; from another origin the browser blocks it and nothing changes. Screenshots land
in test-artifacts/browser/ (git-ignored)."""

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.integration.conftest import (
    PASSWORD,
    ROOT,
    Server,
    free_port,
    log_in,
    run_server,
    scratch_database,
    sign_up,
)

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = ROOT / "test-artifacts" / "browser"
WAIT_S = 20


@pytest.fixture(scope="module")
def page_ports() -> tuple[int, int]:
    """Ports of the page servers: the first is an allowed origin, the second is not."""
    return free_port(), free_port()


@pytest.fixture(scope="module")
def server(
    backend: str, page_ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"browser-{backend}")
    allowed = f"http://127.0.0.1:{page_ports[0]}"
    with (
        scratch_database(backend, directory) as database_url,
        run_server(directory, database_url, BACKEND_CORS_ORIGINS=allowed) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        unavailable(
            "chromium and chromium-driver are not installed (make test installs them as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1600")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page requested since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def forget_logs(driver: Any) -> None:
    """Drop what earlier pages logged (reading a log empties it)."""
    driver.get_log("performance")
    driver.get_log("browser")


def console_errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css))
    ).click()


def wait_until_gone(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.invisibility_of_element_located((By.CSS_SELECTOR, css))
    )


def only_this_host(urls: list[str], server: Server) -> list[str]:
    origin = server.url("")
    return [url for url in urls if not url.startswith((origin, "data:", "blob:"))]


def test_swagger_ui_authorizes_with_a_real_login_and_runs_read_me(
    browser: Any, server: Server, backend: str
) -> None:
    user = sign_up(server)
    forget_logs(browser)
    browser.get(server.url("/docs"))
    wait_for(browser, "#operations-users-users-read-me")

    click(browser, ".auth-wrapper .authorize")
    wait_for(browser, "#oauth_username").send_keys(user["email"])
    wait_for(browser, "#oauth_password").send_keys(PASSWORD)
    click(browser, ".auth-btn-wrapper .authorize")
    wait_for(browser, ".auth-btn-wrapper .btn-done")
    click(browser, ".auth-btn-wrapper .btn-done")
    # The dialog's backdrop covers the page until it has gone: a click meanwhile lands on it.
    wait_until_gone(browser, ".dialog-ux")
    click(browser, "#operations-users-users-read-me .opblock-summary")
    click(browser, "#operations-users-users-read-me .try-out__btn")
    click(browser, "#operations-users-users-read-me .execute")
    live_status = ".live-responses-table tr.response .response-col_status"
    status = wait_for(browser, f"#operations-users-users-read-me {live_status}")
    browser.save_screenshot(str(SCREENSHOTS / f"swagger-ui-{backend}.png"))

    assert status.text.strip().startswith("200")
    assert only_this_host(requested_urls(browser), server) == []
    assert console_errors(browser) == []


def test_redoc_renders_from_this_host_alone(browser: Any, server: Server, backend: str) -> None:
    forget_logs(browser)
    browser.get(server.url("/redoc"))
    heading = wait_for(browser, ".api-info h1")
    wait_for(browser, "[data-section-id='operation/items-create']")
    browser.save_screenshot(str(SCREENSHOTS / f"redoc-{backend}.png"))

    assert "Accounts & Items API" in heading.text
    assert only_this_host(requested_urls(browser), server) == []
    assert console_errors(browser) == []


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>running</title></head>
<body><script>
(async () => {
  const auth = {Authorization: "Bearer %(token)s"};
  try {
    const read = await fetch("%(item)s", {headers: auth});
    const tag = read.headers.get("ETag");
    const patched = await fetch("%(item)s", {
      method: "PATCH",
      headers: {...auth, "Content-Type": "application/json", "If-Match": tag},
      body: JSON.stringify({title: "patched by the browser"}),
    });
    const item = await patched.json();
    document.body.dataset.result = JSON.stringify({
      status: patched.status, title: item.title, readTag: tag,
      etag: patched.headers.get("ETag"), requestId: patched.headers.get("X-Request-ID"),
    });
  } catch (error) {
    document.body.dataset.result = JSON.stringify({error: String(error)});
  }
  document.title = "done";
})();
</script></body></html>"""


class PageServers:
    """Two static page servers for the whole module, an allowed origin and another one, each
    serving the pages registered under their path (never the same path twice, so never a
    cached copy)."""

    def __init__(self, ports: tuple[int, int]) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, b"")
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.servers = [ThreadingHTTPServer(("127.0.0.1", port), Page) for port in ports]
        for httpd in self.servers:
            threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def url(self, origin: int, html: str) -> str:
        path = f"/{uuid.uuid4().hex}"
        self.pages[path] = html.encode()
        port = self.servers[origin].server_address[1]
        return f"http://127.0.0.1:{port}{path}"

    def close(self) -> None:
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture(scope="module")
def pages(page_ports: tuple[int, int]) -> Iterator[PageServers]:
    servers = PageServers(page_ports)
    yield servers
    servers.close()


ALLOWED, OTHER = 0, 1


def run_page(browser: Any, url: str) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, WAIT_S).until(lambda driver: driver.title == "done")
    result: dict[str, Any] = json.loads(
        browser.find_element("tag name", "body").get_attribute("data-result")
    )
    return result


@pytest.fixture
def item(server: Server) -> tuple[str, str]:
    user = sign_up(server)
    token = log_in(server, user["email"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = server.post(
        "/api/v1/items", json={"title": f"cors-{uuid.uuid4().hex[:8]}"}, headers=headers
    )
    assert created.status_code == 201
    return server.url(created.headers["Location"]), token


def test_an_allowed_origin_runs_a_conditional_patch_and_reads_its_headers(
    browser: Any, server: Server, pages: PageServers, item: tuple[str, str], backend: str
) -> None:
    url, token = item

    result = run_page(browser, pages.url(ALLOWED, PAGE % {"item": url, "token": token}))
    browser.save_screenshot(str(SCREENSHOTS / f"cors-allowed-{backend}.png"))

    assert result.get("status") == 200, (result, console_errors(browser))
    assert result["title"] == "patched by the browser"
    assert result["readTag"]
    assert result["etag"]
    assert result["etag"] != result["readTag"]
    assert result["requestId"]


def test_another_origin_is_blocked_by_the_browser_and_changes_nothing(
    browser: Any, server: Server, pages: PageServers, item: tuple[str, str]
) -> None:
    url, token = item
    before = server.get(
        url.removeprefix(server.url("")), headers={"Authorization": f"Bearer {token}"}
    ).json()

    result = run_page(browser, pages.url(OTHER, PAGE % {"item": url, "token": token}))

    assert "error" in result, result
    after = server.get(
        url.removeprefix(server.url("")), headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert after == before
