"""The web playground in a real headless browser (Debian's chromium and chromedriver).

The page loads, a prompt is sent, the reply's text streams in, its audio arrives and is
scheduled on Web Audio, the action and the timings are shown, the device's memory is listed and
forgotten, and the status view fills from /status and /metrics — with no console error (a
Content-Security-Policy violation would show there).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.fakes.server import make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ACTION_REPLY = '{"text": "Opening Safari. It is on its way.", "command": "Open-App", "args": {"app_name": "Safari"}}'
WAIT_SECONDS = 20

_missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
pytestmark = pytest.mark.skipif(
    bool(_missing),
    reason=f"not installed: {', '.join(_missing)} (make test installs chromium and "
    "chromium-driver when run as root; or apt-get install chromium chromium-driver)",
)


def _browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def _wait_for(driver: WebDriver, script: str, what: str) -> None:
    """Wait until ``script`` (a JS expression) is truthy."""
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.execute_script(f"return {script}"), message=f"timed out waiting for {what}"
    )


def _ask(driver: WebDriver, prompt: str, *, keyboard: bool) -> None:
    field = driver.find_element(By.ID, "prompt")
    field.clear()
    field.send_keys(prompt)
    if keyboard:
        field.send_keys(Keys.CONTROL, Keys.ENTER)
    else:
        driver.find_element(By.ID, "send").click()
    _wait_for(
        driver,
        "['ended', 'error'].includes(document.getElementById('turn-status').dataset.state)",
        "the turn's end",
    )


def _scenario(url: str) -> dict[str, object]:
    """Drive the page; return what it showed (checked by the test, on the event loop)."""
    driver = _browser()
    try:
        driver.get(url)
        _wait_for(driver, "document.getElementById('server-status').dataset.updated", "status")
        status_text = driver.find_element(By.ID, "server-status").text
        _ask(driver, "Open Safari", keyboard=False)
        audio = driver.find_element(By.ID, "audio")
        shown = {
            "state": driver.find_element(By.ID, "turn-status").get_attribute("data-state"),
            "status": driver.find_element(By.ID, "turn-status").text,
            "reply": driver.find_element(By.ID, "reply").text,
            "reply_live": driver.find_element(By.ID, "reply").get_attribute("aria-live"),
            "action": driver.find_element(By.ID, "action").get_attribute("data-command"),
            "chunks": int(audio.get_attribute("data-chunks") or 0),
            "scheduled": int(audio.get_attribute("data-scheduled") or 0),
            "bytes": int(audio.get_attribute("data-bytes") or 0),
            "timings": [
                driver.find_element(By.ID, name).text
                for name in ("first-text", "first-audio", "end-time")
            ],
            "server_status": status_text,
        }
        _wait_for(
            driver,
            "document.getElementById('recent').textContent.includes('You: Open Safari')",
            "the memory view to show the exchange",
        )
        shown["recent"] = driver.find_element(By.ID, "recent").text
        driver.find_element(By.ID, "forget").click()
        _wait_for(
            driver,
            "document.getElementById('memory-status').textContent.startsWith('Forgotten')",
            "forgetting",
        )
        shown["after_forget"] = driver.find_element(By.ID, "recent").text
        _ask(driver, "Open Safari again", keyboard=True)  # Ctrl+Enter, no mouse
        shown["second"] = driver.find_element(By.ID, "turn-status").get_attribute("data-state")
        shown["console"] = [
            entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
        ]
        return shown
    finally:
        driver.quit()


async def test_the_playground_speaks_a_turn_in_a_real_browser(server_factory):
    settings = make_settings(
        **{
            "llm.scripted.reply": ACTION_REPLY,
            "llm.scripted.tokens_per_second": 40,  # several text chunks, streamed
        }
    )
    server = await server_factory(settings)
    # Selenium blocks: it runs in a thread while this loop serves the page and the turn.
    shown = await asyncio.to_thread(_scenario, server.http + "/playground")
    assert shown["state"] == "ended", shown["status"]
    assert shown["status"] == "Done (completed)."
    assert shown["reply"] == "Opening Safari. It is on its way."
    assert shown["reply_live"] == "polite"
    assert shown["action"] == "open_app"
    # Audio already waiting arrives in larger messages: a few chunks, all scheduled.
    assert shown["chunks"] >= 2 and shown["scheduled"] == shown["chunks"]
    assert shown["bytes"] > 48000 * 2  # more than a second of 48 kHz int16 audio
    assert all(t.endswith(" ms") for t in shown["timings"]), shown["timings"]
    assert "Active turns" in shown["server_status"] and "ok" in shown["server_status"]
    assert "You: Open Safari — Nexy: Opening Safari. It is on its way." in shown["recent"]
    assert shown["after_forget"] == "nothing"
    assert shown["second"] == "ended"
    assert shown["console"] == []
