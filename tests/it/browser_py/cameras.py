#!/usr/bin/python3
"""Cameras from the browser, in headless Debian Chromium: the admin opens "Add camera" on
the Live page, scans the address of the test's ONVIF camera (multicast off: tests never
multicast onto the host's network), picks it, types its login, reads its profiles (the
main and sub streams are chosen), tests it (its figures and picture appear), names it
and saves; the Live page then plays its tile, and the time from the
click on Save to the first playable frame is measured. On its camera page the zone editor
first draws a strip along the top edge, where the moving ball never is, and no motion
event comes for a whole cycle of it; then a four-cornered zone over the current picture,
renamed, a corner moved, saved, after which the ball's motion inside it raises an event. Then the add-camera page and the editor at phone width, where no page may scroll
sideways. Prints one JSON line of what it saw; exits 1 with the reason on any failure.

usage: cameras.py BASE_URL USER PASSWORD OUTDIR   (env SENTRIX_ONVIF_TARGET, the camera's
discovery address; SENTRIX_ADD_USER, SENTRIX_ADD_PASSWORD: its login)
"""
import os
import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

import session

TILE = ("const v = document.querySelector('#view-front-door video');"
        "return v ? [v.readyState, v.currentTime] : [0, 0];")


def add_camera(driver, wait, base, outdir, seen):
    driver.get(base + "/#live")
    wait.until(lambda d: d.find_element(By.ID, "live-add").is_displayed())
    driver.find_element(By.ID, "live-add").click()
    wait.until(lambda d: d.find_element(By.ID, "scan-targets").is_displayed())
    driver.find_element(By.ID, "scan-targets").send_keys(os.environ["SENTRIX_ONVIF_TARGET"])
    driver.find_element(By.ID, "scan-multicast").click()
    if driver.find_element(By.ID, "scan-multicast").is_selected():
        raise AssertionError("multicast is still on")
    driver.find_element(By.ID, "scan-go").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#scan-list .scan-use"))
    seen["scan"] = driver.find_element(By.CSS_SELECTOR, "#scan-list li").text
    driver.find_element(By.CSS_SELECTOR, "#scan-list .scan-use").click()
    driver.find_element(By.ID, "add-user").send_keys(os.environ["SENTRIX_ADD_USER"])
    driver.find_element(By.ID, "add-password").send_keys(os.environ["SENTRIX_ADD_PASSWORD"])
    driver.find_element(By.ID, "onvif-read").click()
    wait.until(lambda d: d.find_element(By.ID, "onvif-profiles").is_displayed())
    seen["onvif_msg"] = driver.find_element(By.ID, "onvif-msg").text
    seen["main_url"] = driver.find_element(By.ID, "add-url").get_attribute("value")
    seen["sub_url"] = driver.find_element(By.ID, "add-sub").get_attribute("value")
    driver.find_element(By.ID, "add-test").click()
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('add-picture');"
        "return !i.hidden && i.complete && i.naturalWidth > 0;"))
    seen["probe_text"] = driver.find_element(By.ID, "add-probe-msg").text
    driver.find_element(By.ID, "add-name").clear()
    driver.find_element(By.ID, "add-name").send_keys("Front door")
    seen["suggested_id"] = driver.find_element(By.ID, "add-id").get_attribute("value")
    driver.save_screenshot(outdir + "/cameras-add.png")
    saved_at = driver.execute_script("return performance.now();")
    driver.find_element(By.ID, "add-save").click()
    # The Live page with the new tile: poll quickly for its first playable frame.
    deadline = time.monotonic() + 20
    while driver.execute_script(TILE)[0] < 3:
        if time.monotonic() > deadline:
            raise AssertionError(f"the new tile did not play: {driver.execute_script(TILE)}")
        time.sleep(0.05)
    seen["save_to_frame_s"] = round(driver.execute_script(
        "return (performance.now() - arguments[0]) / 1000;", saved_at), 2)
    start = driver.execute_script(TILE)[1]
    wait.until(lambda d: d.execute_script(TILE)[1] > start + 0.5)
    driver.save_screenshot(outdir + "/cameras-live.png")


def click_at(driver, canvas, fx, fy):
    """A click at (fx, fy), fractions of the canvas (offsets are from its centre)."""
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(fx * w - w / 2), int(fy * h - h / 2)).click().perform()


EVENTS_SINCE = """
const done = arguments[arguments.length - 1];
fetch('/api/events?camera=front-door&since=' + arguments[0], {credentials: 'same-origin'})
  .then((r) => r.json()).then((v) => done((v.events || []).length)).catch((e) => done(-1));
"""
# [start_ms, end_ms] of every event of the camera (end_ms null while it lasts).
EVENT_TIMES = """
const done = arguments[arguments.length - 1];
fetch('/api/events?camera=front-door&since=0', {credentials: 'same-origin'})
  .then((r) => r.json()).then((v) => done((v.events || []).map((e) => [e.start_ms, e.end_ms])))
  .catch((e) => done([[-1, -1]]));
"""


def open_editor(driver, wait, base):
    """The camera page freshly loaded, its zone editor open and emptied."""
    driver.get(base + "/#camera/front-door")
    driver.refresh()
    wait.until(lambda d: d.find_element(By.ID, "camera-zones").is_displayed())
    if not driver.find_element(By.ID, "zones-editor").is_displayed():
        driver.find_element(By.ID, "camera-zones").click()
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('zone-picture'); return i.complete && i.naturalWidth > 0;"))
    for button in driver.find_elements(By.CSS_SELECTOR, "#zone-list .zone-delete"):
        button.click()
    return driver.find_element(By.ID, "zone-canvas")


def save_zones(driver, wait):
    """Saves the editor's zones; returns the browser's clock (ms) just after."""
    driver.find_element(By.ID, "zone-save").click()
    wait.until(lambda d: "saved" in d.find_element(By.ID, "zone-msg").text)
    return driver.execute_script("return Date.now();")


def zone_keeps_motion_out(driver, wait, base, seen):
    """A zone along the top edge, where the bottom of the moving ball (40 px across in a
    180-line picture) never is: a whole Lissajous cycle of it raises no event. An event
    already open when the zone is saved ends within the event gap; none may start or last
    beyond it."""
    canvas = open_editor(driver, wait, base)
    driver.find_element(By.ID, "zone-new").click()
    for fx, fy in [(0.02, 0.01), (0.98, 0.01), (0.98, 0.05), (0.02, 0.05)]:
        click_at(driver, canvas, fx, fy)
    driver.find_element(By.ID, "zone-finish").click()
    saved = save_zones(driver, wait)
    time.sleep(26)
    times = driver.execute_async_script(EVENT_TIMES)
    seen["events_before_zone"] = len(times)
    # The ball never stops: without the zone, the event open at the save would still be
    # open (or a new one started). With it, that event ends within the 5 s event gap.
    seen["events_outside_zone"] = sum(
        1 for start, end in times if start > saved + 2000 or end is None or end > saved + 7000)


def draw_zone(driver, wait, base, outdir, seen):
    canvas = open_editor(driver, wait, base)
    driver.find_element(By.ID, "zone-new").click()
    for fx, fy in [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.5)]:
        click_at(driver, canvas, fx, fy)
    driver.find_element(By.ID, "zone-finish").click()
    name = driver.find_element(By.CSS_SELECTOR, "#zone-list .zone-name")
    name.clear()
    name.send_keys("door")
    driver.find_element(By.CSS_SELECTOR, "#zone-list .zone-labels").send_keys("person, motion")
    # Move the corner at (0.5, 0.5) to (0.6, 0.6).
    w, h = canvas.size["width"], canvas.size["height"]
    ActionChains(driver).move_to_element_with_offset(canvas, int(0.5 * w - w / 2), int(0.5 * h - h / 2)) \
        .click_and_hold().move_to_element_with_offset(canvas, int(0.6 * w - w / 2), int(0.6 * h - h / 2)) \
        .release().perform()
    since = save_zones(driver, wait)
    seen["zone_msg"] = driver.find_element(By.ID, "zone-msg").text
    driver.save_screenshot(outdir + "/cameras-zones.png")
    # The ball crosses this zone: an event comes.
    deadline = time.monotonic() + 40
    while driver.execute_async_script(EVENTS_SINCE, since) < 1:
        if time.monotonic() > deadline:
            raise AssertionError("no event from motion inside the drawn zone in 40 s")
        time.sleep(0.5)
    seen["event_inside_zone_s"] = round((driver.execute_script("return Date.now();") - since) / 1000, 1)


def phone(driver, wait, base, outdir, seen):
    driver.set_window_size(390, 844)
    widths = {}
    driver.get(base + "/#add-camera")
    wait.until(lambda d: d.find_element(By.ID, "add-url").is_displayed())
    widths["add-camera"] = session.page_widths(driver)
    driver.save_screenshot(outdir + "/cameras-phone-add.png")
    driver.get(base + "/#camera/front-door")
    wait.until(lambda d: d.find_element(By.ID, "camera-zones").is_displayed())
    driver.find_element(By.ID, "camera-zones").click()
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('zone-picture'); return i.complete && i.naturalWidth > 0;"))
    widths["zones"] = session.page_widths(driver)
    driver.save_screenshot(outdir + "/cameras-phone-zones.png")
    seen["phone_widths"] = widths
    wide = {p: w for p, w in widths.items() if w[0] > w[1] + 1}
    if wide:
        raise AssertionError(f"pages wider than a phone screen (scroll, client): {wide}")


def steps(driver, wait, base, user, password, outdir, seen):
    session.login(driver, wait, base, user, password)
    add_camera(driver, wait, base, outdir, seen)
    zone_keeps_motion_out(driver, wait, base, seen)
    draw_zone(driver, wait, base, outdir, seen)
    phone(driver, wait, base, outdir, seen)


if __name__ == "__main__":
    session.run("cameras", steps)
