"""The console page of `lure serve` in a real browser (Debian's Chromium, driven
by Playwright): run by tests/serve.rs (`console_works_in_a_real_browser`) as
`python console_browser.py URL TASK_ROOT CHROMIUM`. Opens the console, edits and
saves the script, saves a test event, picks a template and the saved event,
invokes, and reads the result and the log; fails on any error in the browser's
console. Exits non-zero on the first failed check.
"""

import json
import pathlib
import re
import sys

from playwright.sync_api import expect, sync_playwright

url, task_root, chromium = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]

EDITED = """local M = {}
function M.handler(event, context)
  print("edited in the console")
  if event.fail then error({ errorType = "Refused", errorMessage = "no " .. event.name }) end
  return { greeting = "hello " .. event.name .. ", edited" }
end
return M
"""

errors = []
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium)
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    expect.set_options(timeout=30_000)

    page.goto(url + "/_lure")  # redirected to /_lure/
    assert page.url.endswith("/_lure/"), page.url
    expect(page.locator("#files button", has_text="app.lua")).to_be_visible()
    # The handler's file is open, highlighted, with line numbers.
    expect(page.locator("#file-name")).to_have_text("app.lua")
    expect(page.locator("#highlight .tok-k").first).to_have_text("local")
    expect(page.locator("#gutter")).to_contain_text("1\n2\n3")

    # Edit and save: the file on disk is the edited text.
    page.locator("#source").fill(EDITED)
    expect(page.locator("#save")).to_be_enabled()
    page.locator("#save").click()
    expect(page.locator("#status")).to_contain_text("Saved app.lua")
    expect(page.locator("#save")).to_be_disabled()
    got = (task_root / "app.lua").read_text()
    if got != EDITED:
        sys.exit(f"app.lua on disk: {got!r}")

    # A test event, saved under .lure/events/.
    page.locator("#event").fill('{"name": "Ada"}')
    page.locator("#event-name").fill("greet ada")
    page.locator("#save-event").click()
    expect(page.locator("#status")).to_contain_text("Saved the event greet ada")
    saved = json.loads((task_root / ".lure/events/greet ada.json").read_text())
    if saved != {"name": "Ada"}:
        sys.exit(f"the saved event: {saved!r}")

    # A template, then the saved event again.
    page.locator("#event-pick").select_option("template:SQS")
    expect(page.locator("#event")).to_have_value(re.compile('"Records"'))
    page.locator("#event-pick").select_option("event:greet ada")
    expect(page.locator("#event")).to_have_value('{"name": "Ada"}')

    # Invoke: the edited code runs (a fresh environment after the save).
    page.locator("#invoke").click()
    expect(page.locator("#outcome")).to_have_text("Succeeded")
    expect(page.locator("#response")).to_contain_text('"greeting": "hello Ada, edited"')
    expect(page.locator("#duration")).to_have_text(re.compile(r"^\d+\.\d\d ms$"))
    expect(page.locator("#memory")).to_have_text(re.compile(r"MB of 128 MB$"))
    expect(page.locator("#log")).to_contain_text("edited in the console")
    expect(page.locator("#log")).to_contain_text(re.compile(r"START RequestId: [0-9a-f-]{36}"))
    expect(page.locator("#log")).to_contain_text("REPORT RequestId")

    # A function error is shown as one.
    page.locator("#event").fill('{"name": "Bob", "fail": true}')
    page.locator("#invoke").click()
    expect(page.locator("#outcome")).to_have_text("Failed")
    expect(page.locator("#response")).to_contain_text('"errorType": "Refused"')

    browser.close()

if errors:
    sys.exit("errors in the browser's console:\n" + "\n".join(errors))
print("console checks passed")
