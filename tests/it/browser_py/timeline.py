#!/usr/bin/python3
"""Drives the timeline page in headless Debian Chromium against a `sentrix run` recording
the demo camera continuously (10-second segments) with one event: zoom to 10 minutes,
click a time inside the recorded span and check the wall-clock readout is within 1 s of
it; click the event's marker and check playback starts at its pre-roll; let playback run
across segment boundaries with currentTime advancing and readyState >= 3 throughout;
export a range and check its size and duration; and at a phone's width the page does not
scroll sideways. Screenshots go to OUTDIR. Prints one JSON line of what it saw; exits 1
with the reason on any failure.

usage: timeline.py BASE_URL USER PASSWORD OUTDIR
"""
import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import session

# The timeline module's state, as it hangs on its bar for tests (timeline.js): no global.
TL = "const tl = document.getElementById('tl-bar').timeline;"

WALL = "return Number(document.getElementById('tl-clock').dataset.wallMs) || null;"
# The player has started where it was last asked to (a click stops what played before),
# and has a picture to show.
READY = (TL + "const v = document.getElementById('tl-video');"
         "return tl.player.started && v.readyState >= 3"
         " && !!document.getElementById('tl-clock').dataset.wallMs;")

# The player's state, for a failure's report.
PLAYER = (TL + "const p = tl.player, b = p.video.buffered, ranges = [];"
          "for (let i = 0; i < b.length; i++) ranges.push([b.start(i), b.end(i)]);"
          "return {base: p.base, next: p.next, current_s: p.video.currentTime, buffered_s: ranges,"
          " spans: p.spans, events: tl.data.events};")


def click_bar_at(driver, ms):
    """Clicks the bar where wall time `ms` is; returns the time the page took from it."""
    bar = driver.find_element(By.ID, "tl-bar")
    x = driver.execute_script(
        TL + "const r = arguments[0].getBoundingClientRect();"
        "return (arguments[1] - tl.view0) / tl.viewLen * r.width - r.width / 2;", bar, ms)
    ActionChains(driver).move_to_element_with_offset(bar, int(x), 0).click().perform()
    return float(driver.find_element(By.ID, "tl-bar").get_attribute("data-play-ms"))


def wait_playing(driver, wait):
    """Waits until the player has started at the time last clicked; returns its readout."""
    wait.until(lambda d: d.execute_script(READY))
    return driver.execute_script(WALL)


def steps(driver, wait, base, user, password, outdir, seen):
    session.login(driver, wait, base, user, password)
    driver.get(base + "/#timeline/demo")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tl-spans .tl-span"))
    span = driver.execute_script(TL + "return tl.data.spans[tl.data.spans.length - 1];")
    Select(driver.find_element(By.ID, "tl-zoom")).select_by_visible_text("10 min")
    wait.until(lambda d: d.execute_script(TL + "return tl.viewLen === 600000;"))
    driver.save_screenshot(outdir + "/timeline-day.png")

    # A click inside the span: the readout shows the clicked time.
    target = span["start_ms"] + (span["end_ms"] - span["start_ms"]) * 0.3
    clicked = click_bar_at(driver, target)
    if not span["start_ms"] <= clicked < span["end_ms"]:
        raise AssertionError(f"the click landed at {clicked}, outside {span}")
    driver.execute_script("document.getElementById('tl-video').pause();")
    wall = wait_playing(driver, wait)
    seen["click_offset_ms"] = wall - clicked
    if abs(wall - clicked) > 1000:
        raise AssertionError(f"readout {wall} for a click at {clicked}")

    # An event marker: playback starts at the event's pre-roll.
    event = driver.execute_script(TL + "return tl.data.events[0];")
    pre = driver.execute_script(TL + "return tl.data.pre_roll_ms;")
    marker = driver.find_element(By.CSS_SELECTOR, f"#tl-markers [data-event='{event['id']}']")
    marker.click()
    wall = wait_playing(driver, wait)
    expected = max(event["start_ms"] - pre, span["start_ms"])
    seen["event_offset_ms"] = wall - expected
    if abs(wall - expected) > 1000:
        seen["player"] = driver.execute_script(PLAYER)
        raise AssertionError(f"readout {wall} for an event at {event['start_ms']} (pre-roll {pre})")

    # Play from 2 s into the span for 14 s: across at least one segment boundary.
    click_bar_at(driver, span["start_ms"] + 2000)
    wait_playing(driver, wait)
    driver.execute_script("document.getElementById('tl-video').play();")
    samples = []
    for _ in range(28):
        time.sleep(0.5)
        samples.append(driver.execute_script(
            "const v = document.getElementById('tl-video'); return [v.currentTime, v.readyState];"))
    seen["playback"] = samples[::4]
    for (t0, _), (t1, r1) in zip(samples, samples[1:]):
        if not (t1 > t0 and r1 >= 3):
            raise AssertionError(f"playback stalled: {samples}")
    if samples[-1][0] - samples[0][0] < 10:
        raise AssertionError(f"played only {samples[-1][0] - samples[0][0]} s in 14 s")
    driver.save_screenshot(outdir + "/timeline-playing.png")

    # Export 15 s of the span: its size and duration.
    start = span["start_ms"] + 1000
    for field, ms in (("tl-from", start), ("tl-to", start + 15000)):
        driver.execute_script(
            "document.getElementById(arguments[0]).value = new Date(arguments[1]).toTimeString().slice(0, 8);",
            field, ms)
    driver.find_element(By.CSS_SELECTOR, "#tl-export button[type=submit]").click()
    href = wait.until(lambda d: d.find_element(By.ID, "tl-export-link").get_attribute("href"))
    export = driver.execute_script(
        "return fetch(arguments[0]).then(async (r) => ({status: r.status,"
        " size: (await r.arrayBuffer()).byteLength, duration: Number(r.headers.get('X-Sentrix-Duration-Ms')),"
        " disposition: r.headers.get('Content-Disposition')}));", href)
    seen["export"] = export
    if export["status"] != 200 or export["size"] < 10000:
        raise AssertionError(f"export: {export}")
    if not 14000 <= export["duration"] <= 17000:
        raise AssertionError(f"export of 15 s lasts {export['duration']} ms")

    # A phone's width: nothing scrolls sideways.
    driver.set_window_size(390, 844)
    time.sleep(0.5)
    widths = session.page_widths(driver)
    seen["phone_width"] = widths
    driver.save_screenshot(outdir + "/timeline-phone.png")
    if widths[0] > widths[1] + 1:
        raise AssertionError(f"the timeline is wider than a phone: {widths}")


if __name__ == "__main__":
    session.run("timeline", steps)
