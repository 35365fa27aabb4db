#!/usr/bin/env python3
"""Drives the dispatch desk in headless Chromium, signed in as a caseworker with a client
certificate. Phase `send`: the send form (two problems listed at once, the file that passed
kept), the review naming the files, the job's page until the real DSN says delivered, a read
notification through `kurir inbound` (the `--kurir` wrapper), the page until it says opened, the
list, the receipt page, an action's confirmation, a refusal and the accessibility statement.
Phase `calls`: Att ringa lists the unopened decision with what to say; "Inget svar" keeps it,
"Kommunen vet om beslutet" closes it. axe-core's WCAG 2.1 A/AA rules run on every page, with a
screenshot of each, and its text is read for English and raw UTC times. Prints one JSON line
with what it found; exits non-zero on a failed check.

Called by tests/desk_browser.rs, which sets up the servers, the certificates and the policy.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser"))
from kit import Session  # noqa: E402


def read_notification(return_path, message_id, mailbox):
    """A read notification as Thunderbird composes one (the same as tests/common/mailworld.rs)."""
    return (
        "Return-Path: <{m}>\r\nMessage-ID: <mdn-desk@umea.test>\r\n"
        "Date: Mon, 30 Nov 2026 10:15:00 +0100\r\nMIME-Version: 1.0\r\n"
        "User-Agent: Mozilla Thunderbird\r\nFrom: Registrator <{m}>\r\nTo: {rp}\r\n"
        "Subject: =?UTF-8?Q?L=C3=A4st=3A_Beslut_om_anvisning?=\r\n"
        "Content-Type: multipart/report; report-type=disposition-notification;\r\n"
        "\tboundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        "Mottagningsbevis.\r\n\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
        "Reporting-UA: umea.test; Mozilla Thunderbird\r\nFinal-Recipient: rfc822;{m}\r\n"
        "Original-Message-ID: <{mid}>\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--b--\r\n"
    ).format(m=mailbox, rp=return_path, mid=message_id)


def stored_return_path(maildir, message_id):
    """The envelope sender of the message `message_id` in Umeå's mailbox, as its server
    stored it."""
    deadline = time.time() + 60
    while time.time() < deadline:
        for root, _, files in os.walk(maildir):
            for name in files:
                with open(os.path.join(root, name), "rb") as handle:
                    text = handle.read().decode("utf-8", "replace")
                if message_id not in text:
                    continue
                for line in text.splitlines():
                    if line.startswith("Return-Path: "):
                        return line.split(": ", 1)[1].strip().strip("<>")
        time.sleep(0.2)
    raise SystemExit("the message did not arrive in " + maildir)


def send_phase(session, args, found):
    driver, axe, wait_for = session.driver, session.axe, session.wait_for
    driver.get(args.url + "/expedition/skicka")
    axe("skicka")

    def fill(case, decision, god_man):
        driver.find_element(By.ID, "kommun").clear()
        driver.find_element(By.ID, "kommun").send_keys("Umeå kommun (2480)")
        driver.find_element(By.ID, "arende").clear()
        driver.find_element(By.ID, "arende").send_keys(case)
        if decision:
            driver.find_element(By.ID, "anvisningsbeslut").send_keys(decision)
        if god_man:
            driver.find_element(By.ID, "godman").send_keys(god_man)
        driver.find_element(By.XPATH, "//button[text()='Granska']").click()

    # Two problems at once (a damaged decision, a case number without its dash): both listed at
    # the top as links to their fields, each at its field; the god man notice that passed is
    # kept, by its name.
    fill(args.case.replace("-", ""), args.damaged, args.god_man)
    wait_for("saker behöver rättas", "refusing the damaged PDF and the case number")
    summary = driver.find_element(By.CLASS_NAME, "error-summary")
    found["summary_links"] = sorted(a.get_attribute("href").split("#")[1]
                                    for a in summary.find_elements(By.TAG_NAME, "a"))
    field = driver.find_element(By.ID, "anvisningsbeslut")
    found["error_described"] = field.get_attribute("aria-describedby")
    found["error_text"] = driver.find_element(By.ID, "anvisningsbeslut-fel").text
    found["god_man_kept"] = driver.find_element(By.ID, "godman-vald").text
    axe("skicka-fel")
    # Fixed without choosing the god man notice again: the review names both files.
    fill(args.case, args.decision, None)
    wait_for("Granska och skicka", "the confirmation")
    found["route"] = driver.find_element(By.TAG_NAME, "table").text
    found["review_files"] = driver.find_elements(By.TAG_NAME, "table")[1].text
    found["review_opens"] = len(driver.find_elements(
        By.XPATH, "//a[contains(@href, '/expedition/skicka/utkast/')]"))
    axe("granska")
    driver.find_element(By.XPATH, "//button[text()='Skicka beslutet']").click()
    wait_for("Du skickade beslutet", "sending")
    job = driver.current_url.split("/expedition/utskick/")[1].split("?")[0]
    found["job"] = job
    wait_for("✓ levererat", "the delivery report", seconds=90, reload=True)
    found["status_delivered"] = driver.find_element(By.CLASS_NAME, "lead").text
    axe("utskick-levererat")

    status = json.loads(subprocess.run([args.kurir, "status", job, "--json"], check=True,
                                       capture_output=True).stdout)
    message_id = status["job"]["recipients"][0]["email"]["message_id"]
    return_path = stored_return_path(args.maildir, message_id)
    subprocess.run([args.kurir, "inbound", "--recipient", return_path], check=True,
                   input=read_notification(return_path, message_id, "registrator@umea.test")
                   .encode("utf-8"), capture_output=True)
    wait_for("✓ öppnat", "the read notification", seconds=60, reload=True)
    found["status_opened"] = driver.find_element(By.CLASS_NAME, "lead").text
    found["actions_on_finished"] = driver.find_element(By.ID, "rubrik-atgard") \
        .find_element(By.XPATH, "..").text
    axe("utskick-jobb")
    # Reloading the page after it moved on never says it is being sent.
    found["notice_after_reload"] = any("skickas" in e.text for e in
                                       driver.find_elements(By.CLASS_NAME, "notice"))

    driver.get(args.url + "/expedition/utskick")
    found["list_links_case"] = len(driver.find_elements(
        By.XPATH, "//a[text()='%s' and contains(@href, '%s')]" % (args.case, job))) > 0
    found["list_sent_by"] = "Bosättningsenheten" in driver.page_source
    axe("utskick")
    driver.get(args.url + "/expedition/utskick?visa=vantar-pa-bevis")
    axe("utskick-vantar")
    driver.get(args.url + "/expedition/utskick/" + job + "/kvitto")
    found["receipt_has_case"] = args.case in driver.page_source
    found["receipt_lead"] = driver.find_element(By.CLASS_NAME, "lead").text
    axe("kvitto")
    driver.get(args.url + "/expedition/utskick/" + job + "/skicka-igen")
    axe("atgard")
    # A page that cannot help, in the desk's own frame with whom to contact.
    driver.get(args.url + "/expedition/utskick/" + "0" * 32)
    found["refusal_frame"] = ("expeditionen, Bosättningsenheten" in driver.page_source
                              and "Till expeditionens startsida" in driver.page_source
                              and "Kontakta Migrationsverkets drift" in driver.page_source)
    found["refusal_title"] = driver.title
    axe("saknas")
    driver.get(args.url + "/tillganglighet")
    found["statement"] = driver.find_element(By.TAG_NAME, "main").text
    axe("tillganglighet")


def calls_phase(session, args, found):
    driver, axe, wait_for = session.driver, session.axe, session.wait_for
    driver.get(args.url + "/expedition/att-ringa")
    wait_for(args.job, "the unread decision under Att ringa")
    section = driver.find_element(
        By.XPATH, "//a[contains(@href, '%s')]/ancestor::section" % args.job)
    found["calls_name_phone"] = "0980-123 45" in section.text
    found["calls_case"] = args.case in section.text
    found["calls_what_to_say"] = section.text
    found["menu"] = driver.find_element(By.TAG_NAME, "nav").text
    axe("att-ringa")
    # Nobody answers: the try is noted and the call stays.
    section.find_element(By.TAG_NAME, "textarea").send_keys("Växeln svarade inte")
    section.find_element(By.XPATH, ".//button[@value='inget-svar']").click()
    wait_for("Larmet är kvar", "noting a call nobody answered")
    found["kept_after_no_answer"] = args.job in driver.page_source
    axe("att-ringa-inget-svar")
    section = driver.find_element(
        By.XPATH, "//a[contains(@href, '%s')]/ancestor::section" % args.job)
    section.find_element(By.TAG_NAME, "textarea").send_keys("Ringde registraturen 14.05")
    section.find_element(By.XPATH, ".//button[@value='vet']").click()
    wait_for("Samtalet är antecknat och larmet stängt", "closing the call")
    found["closed"] = args.job not in driver.page_source
    found["menu_after"] = driver.find_element(By.TAG_NAME, "nav").text
    axe("att-ringa-klart")
    driver.get(args.url + "/expedition/utskick/" + args.job)
    found["timeline"] = driver.find_element(By.ID, "rubrik-tidslinje").find_element(
        By.XPATH, "..").text
    axe("utskick-ringt")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=["send", "calls"], required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--case", default="")
    ap.add_argument("--decision", default="")
    ap.add_argument("--god-man", default="")
    ap.add_argument("--damaged", default="")
    ap.add_argument("--kurir", default="")
    ap.add_argument("--maildir", default="")
    ap.add_argument("--job", default="")
    ap.add_argument("--axe", required=True)
    ap.add_argument("--screenshots", required=True)
    args = ap.parse_args()
    session = Session(args.axe, args.screenshots)
    try:
        if args.phase == "send":
            send_phase(session, args, session.found)
        else:
            calls_phase(session, args, session.found)
    finally:
        session.driver.quit()
    session.report()


if __name__ == "__main__":
    sys.exit(main())
