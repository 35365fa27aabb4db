"""What the browser tests share: headless Chromium (Debian chromium + chromium-driver) over
WebDriver (selenium), signed in with the client certificate in the test HOME's NSS database;
axe-core's WCAG 2.1 A/AA rules run on a page with a screenshot beside it, and the text a person
reads on it (what is not folded under "Tekniska uppgifter") is searched for English from kurir's
histories and for raw UTC times."""
import json
import os
import re
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# The English that kurir's histories, events and the command line are worded in (the job's
# events, a registration's entries, how people are recorded): none of it may reach a page.
ENGLISH = [r"claimed and validated", r"\brouted\b", r"sending through", r"accepted by",
           r"delivered to", r"\bread by\b", r"\bdisplayed\b", r"queued as", r"acknowledged",
           r"verification code", r"via portal", r"via desk", r"\baddress\b", r"\bconfirmed\b",
           r"\bretry\b", r"\bdeferred\b", r"fell back", r"all recipients",
           r"notice of the change", r"\bwrong\b", r"\bapproved\b", r"\brefused\b",
           r"manual-action", r"\bMDN\b", r"\bset\b", r"\bimport\b", r"\bheld\b",
           r"\breleased\b", r"\bcancelled\b", r"\bexpired\b", r"\bcalled\b",
           r"\bno answer\b", r"\bstate\b", r"\bjob\b"]
# A time as machines write it: ISO 8601 with its T, a Z, or a named UTC/GMT.
UTC = [r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", r"\d{2}:\d{2}(:\d{2})?Z\b", r"\bUTC\b", r"\bGMT\b"]


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
        self.size = (width, height)
        self.found = {"violations": {}, "pages": [], "english": {}, "utc": {}}

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
        self.read_words(name)
        self.whole_page(os.path.join(self.screenshots, name + ".png"))

    def whole_page(self, path):
        """A screenshot of the whole page, however long (the window grows to it, then back)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(self.size[0], max(self.size[1], height + 20))
        self.driver.save_screenshot(path)
        self.driver.set_window_size(*self.size)

    def read_words(self, name):
        """What a person reads on the page (not what is folded under its technical details),
        searched for English and raw UTC times."""
        text = self.driver.execute_script(
            "const c = document.body.cloneNode(true);"
            "c.querySelectorAll('details, script, style').forEach(e => e.remove());"
            "return c.innerText;")
        self.found["english"][name] = [p for p in ENGLISH if re.search(p, text, re.IGNORECASE)]
        self.found["utc"][name] = [p for p in UTC if re.search(p, text)]

    def report(self):
        """Prints what was found as the one JSON line the Rust side reads."""
        print(json.dumps(self.found, ensure_ascii=False))
