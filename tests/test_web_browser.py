"""The answer page in a real browser (Debian's chromium, driven by Selenium) at a phone's
viewport: no JavaScript needed, the answer goes through, the confirmation shows."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CliRunner, missing_tool
from tests.web_site import site_for

PHONE = (360, 740)  # a small Android phone, CSS pixels


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        missing_tool("chromium and chromedriver (apt: chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={PHONE[0]},{PHONE[1]}",
    ):
        options.add_argument(flag)
    metrics = {"width": PHONE[0], "height": PHONE[1], "pixelRatio": 2}
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    service = Service(executable_path=driver, log_output=os.devnull)
    chrome = webdriver.Chrome(options=options, service=service)
    chrome.set_page_load_timeout(30)  # a hang fails the test instead of stalling the suite
    try:
        yield chrome
    finally:
        chrome.quit()


def test_a_phone_browser_answers_without_javascript_and_sees_the_confirmation(
    browser: Any, loaded: CliRunner, db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    with site_for(loaded, db_url, config_dir) as site:
        code = site.code()
        browser.get(f"{site.url}/r/{code}")
        assert "双鸭山市测试1有限公司" in browser.find_element(By.TAG_NAME, "h1").text
        sizes = browser.execute_cdp_cmd(
            "Runtime.evaluate",
            {
                "expression": "[document.documentElement.scrollWidth, window.innerWidth]",
                "returnByValue": True,
            },
        )
        scroll, inner = sizes["result"]["value"]
        assert inner == PHONE[0] and scroll <= inner  # a phone's width, no sideways scrolling
        browser.find_element(By.CSS_SELECTOR, 'button[value="willing"]').click()
        done = WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CLASS_NAME, "done"))
        assert "已收到您的答复：我有修复意愿" in done[0].text
        browser.save_screenshot(str(tmp_path / "answered.png"))
        assert (tmp_path / "answered.png").stat().st_size > 1000
        entry = site.entry()
        assert (entry["company_answer"], entry["willingness"]) == ("willing", "yes")
        if os.environ.get("CREDIT_REPAIR_SCREENSHOT"):  # to look at it: set the path
            shutil.copy(tmp_path / "answered.png", os.environ["CREDIT_REPAIR_SCREENSHOT"])
