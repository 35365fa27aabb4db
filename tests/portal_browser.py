#!/usr/bin/env python3
"""Drives the municipality portal in headless Chromium (Debian chromium + chromium-driver) over
WebDriver (selenium), signed in with a client certificate from the test's NSS database: signs
in, changes the decision address (saving sends the code: step 2 comes first on the page), reads
the code from the real SMTP test server's mailbox, types it, sees the route change to e-mail and
the change in the history in words. Runs axe-core's WCAG 2.1 A/AA rules on every page, reads
its text for English and raw UTC times, and saves screenshots. Prints one JSON line with what it found; exits non-zero on a
failed check.

Called by tests/portal_browser.rs, which sets up the daemon, the certificates and the policy.
"""
import argparse
import email
import os
import sys
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser"))
from kit import Session  # noqa: E402


def code_from_mailbox(directory, after):
    """The verification code in the newest message the SMTP test server stored after `after`."""
    deadline = time.time() + 60
    while time.time() < deadline:
        files = [os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".eml")]
        files = [f for f in files if os.path.getmtime(f) >= after]
        for path in sorted(files, key=os.path.getmtime, reverse=True):
            with open(path, "rb") as handle:
                message = email.message_from_binary_file(handle)
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    text = part.get_payload(decode=True).decode("utf-8", "replace")
                    for line in text.splitlines():
                        if line.strip().startswith("Verifieringskod:"):
                            return line.split(":", 1)[1].strip()
        time.sleep(0.2)
    raise SystemExit("no verification message arrived")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--mailbox", required=True)
    ap.add_argument("--address", required=True)
    ap.add_argument("--hsa-id", required=True)
    ap.add_argument("--axe", required=True)
    ap.add_argument("--screenshots", required=True)
    args = ap.parse_args()

    session = Session(args.axe, args.screenshots)
    driver, found, axe, wait_for = session.driver, session.found, session.axe, session.wait_for

    try:
        driver.get(args.url + "/")
        if "Umeå kommun" not in driver.page_source:
            raise SystemExit("the start page does not list Umeå: " + driver.page_source[:2000])
        axe("start")
        # Keyboard: the first Tab reaches the skip link.
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        found["first_tab"] = driver.switch_to.active_element.text
        driver.find_element(By.PARTIAL_LINK_TEXT, "Umeå kommun").click()
        axe("kommun")
        field = driver.find_element(By.ID, "decision_email")
        field.clear()
        field.send_keys(args.address)
        phone = driver.find_element(By.ID, "phone")
        phone.clear()
        phone.send_keys("090-16 10 00")
        sent_at = time.time() - 1
        # Step 1: saving sends the code at once; step 2 (the code) is then first on the page.
        driver.find_element(By.XPATH, "//button[text()='Spara ändringarna']").click()
        wait_for("Steg 1 av 2 är klart", "saving and sending the code")
        found["first_heading"] = driver.find_element(By.CSS_SELECTOR, "main h2").text
        found["step_two"] = driver.find_element(By.ID, "rubrik-kod").find_element(
            By.XPATH, "..").text
        axe("steg-2")
        code = code_from_mailbox(args.mailbox, sent_at)
        driver.find_element(By.ID, "kod").send_keys(code)
        driver.find_element(By.XPATH, "//button[text()='Bekräfta adressen']").click()
        wait_for("Adressen är bekräftad", "confirming")
        route = driver.find_element(By.ID, "vag").text
        found["route"] = route
        found["history_has_hsa_id"] = args.hsa_id in driver.page_source
        found["history"] = driver.find_element(By.ID, "rubrik-historik").find_element(
            By.XPATH, "..").text
        axe("bekraftad")
        driver.get(args.url + "/tillganglighet")
        axe("tillganglighet")
        driver.get(args.url + "/kommun/0180")
        if "har inte behörighet" not in driver.page_source:
            raise SystemExit("another municipality was not refused: " + driver.page_source[:2000])
        axe("nekad")
        driver.get(args.url + "/kommun/9999")
        found["unknown_title"] = driver.title
        axe("okand-kommun")
        # An error tied to its field.
        driver.get(args.url + "/kommun/2480")
        phone = driver.find_element(By.ID, "phone")
        phone.clear()
        phone.send_keys("ring mig")
        driver.find_element(By.XPATH, "//button[text()='Spara ändringarna']").click()
        wait_for("phone-fel", "the refused phone number")
        phone = driver.find_element(By.ID, "phone")
        found["error_described"] = phone.get_attribute("aria-describedby")
        found["error_invalid"] = phone.get_attribute("aria-invalid")
        axe("fel")
    finally:
        driver.quit()
    session.report()


if __name__ == "__main__":
    sys.exit(main())
