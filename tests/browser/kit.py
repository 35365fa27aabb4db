"""What the browser tests share: headless Chromium (Debian chromium + chromium-driver) over
WebDriver (selenium), signed in with the client certificate in the test HOME's NSS database;
axe-core's WCAG 2.1 A/AA rules run on a page with a screenshot beside it."""
import json
import os
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


class Session:
    """One browser, the axe-core source, where screenshots go, and what was found."""

    def __init__(self, axe_path, screenshots, width=1100, height=1500):
        os.makedirs(screenshots, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=%d,%d" % (width, height), "--lang=sv-SE"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(30)
        self.axe_source = open(axe_path, encoding="utf-8").read()
        self.screenshots = screenshots
        self.found = {"violations": {}, "pages": []}

    def wait_for(self, text, what, seconds=20, reload=False):
        """Waits until the page holds `text` (reloading it each second with `reload`)."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if text in self.driver.page_source:
                return
            if reload:
                time.sleep(1)
                self.driver.refresh()
            else:
                time.sleep(0.1)
        raise SystemExit(what + " failed: " + self.driver.page_source[:3000])

    def axe(self, name):
        """Runs axe-core's WCAG 2.1 A/AA rules on the page and saves a screenshot `name`.png."""
        self.driver.execute_script(self.axe_source)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: %s}}).then(r => done(r.violations.map("
            "v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))))"
            % json.dumps(WCAG))
        self.found["violations"][name] = result
        self.found["pages"].append(name)
        self.driver.save_screenshot(os.path.join(self.screenshots, name + ".png"))

    def report(self):
        """Prints what was found as the one JSON line the Rust side reads."""
        print(json.dumps(self.found, ensure_ascii=False))
