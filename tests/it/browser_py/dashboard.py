#!/usr/bin/python3
"""Drives the dashboard in headless Debian Chromium (chromedriver, selenium): log in on the
login page, see a live tile play, open an event's clip, seek to the middle and check
currentTime is there with a frame decoded; then, on the Users page, add a user with a
generated password, change it and remove the user, checking each with a real login; and at
a phone's 390x844 no page scrolls sideways. Screenshots go to OUTDIR. Prints one JSON line of
what it saw; exits 1 with the reason on any failure.

usage: dashboard.py BASE_URL USER PASSWORD OUTDIR
"""
import os
import time

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import session


def review(driver, wait, base, outdir, seen):
    """The Review page comes first after login. The manual trigger's item is a detection:
    hovering it plays its recording within 2 s, opening it plays the timeline from its
    pre-roll, and "Mark all as reviewed" clears the tab's badge. Desktop and phone
    screenshots; no sideways scrolling at phone width."""
    seen["landing"] = driver.execute_script(
        "return [...document.querySelectorAll('.page')].filter(p => !p.hidden).map(p => p.id);")
    if seen["landing"] != ["page-review"]:
        raise AssertionError(f"the landing page is {seen['landing']}")
    driver.find_element(By.ID, "tab-detection").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#review-items li .thumb"))
    seen["detection_badge"] = driver.find_element(By.ID, "count-detection").text
    thumb = driver.find_elements(By.CSS_SELECTOR, "#review-items li .thumb")[0]
    hovered = time.monotonic()
    ActionChains(driver).move_to_element(thumb).perform()
    WebDriverWait(driver, 2).until(lambda d: d.execute_script(
        "const v = document.querySelector('#review-items video.preview');"
        "return v && v.readyState >= 2 && !v.paused && v.currentTime > 0;"))
    seen["preview_playing_s"] = round(time.monotonic() - hovered, 2)
    driver.save_screenshot(outdir + "/review-desktop.png")
    driver.set_window_size(390, 844)
    time.sleep(0.5)
    driver.save_screenshot(outdir + "/review-phone.png")
    seen["review_phone_widths"] = session.page_widths(driver)
    if seen["review_phone_widths"][0] > seen["review_phone_widths"][1]:
        raise AssertionError(f"the review page scrolls sideways: {seen['review_phone_widths']}")
    driver.set_window_size(1280, 900)
    # Open: the timeline plays from the item's pre-roll (1 s in the test config).
    item = driver.execute_script(
        "return fetch('/api/review?severity=detection').then(r => r.json()).then(j => j.items[0]);")
    driver.find_elements(By.CSS_SELECTOR, "#review-items li a.open")[0].click()
    wait.until(lambda d: d.execute_script(
        "const v = document.getElementById('tl-video'); return v.readyState >= 2 && !v.paused;"))
    first_ms = float(driver.find_element(By.ID, "tl-clock").get_attribute("data-wall-ms"))
    seen["opened_at_offset_ms"] = first_ms - item["start_ms"]
    if not -2500 <= seen["opened_at_offset_ms"] <= 500:
        raise AssertionError(f"the item played from {seen['opened_at_offset_ms']} ms of its start")
    # Mark all as reviewed clears the badge.
    driver.get(base + "/#review/detection")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#review-items li"))
    driver.find_element(By.ID, "review-all").click()
    wait.until(lambda d: d.find_element(By.ID, "count-detection").text == "")
    seen["after_mark_all"] = driver.execute_script(
        "return fetch('/api/review?severity=detection&reviewed=false').then(r => r.json()).then(j => j.items.length);")


def steps(driver, wait, base, user, password, outdir, seen):
    seen["logged_in"] = session.login(driver, wait, base, user, password)
    review(driver, wait, base, outdir, seen)

    # A live tile plays the camera's own stream (fMP4 over a WebSocket into MSE).
    driver.get(base + "/#live")
    wait.until(lambda d: d.execute_script(
        "const v = document.querySelector('#grid video');"
        "return v && v.readyState >= 3 && v.currentTime > 1;"))
    seen["tile_width"] = driver.execute_script(
        "return document.querySelector('#grid video').videoWidth;")
    driver.save_screenshot(outdir + "/dashboard-live.png")
    # The alarm-only camera's tile shows its newest alarm picture and says so.
    wait.until(lambda d: d.execute_script(
        "const i = document.querySelector('#view-doorbell img.last-picture');"
        "return i && i.complete && i.naturalWidth > 0;"))
    seen["alarm_tile_picture_width"] = driver.execute_script(
        "return document.querySelector('#view-doorbell img.last-picture').naturalWidth;")
    seen["alarm_tile_badge"] = driver.find_element(By.ID, "badge-doorbell").text
    # A camera that cannot be reached says why on its tile, in words.
    trouble = wait.until(lambda d: d.find_element(By.ID, "trouble-gate").is_displayed()
                         and d.find_element(By.ID, "trouble-gate"))
    seen["gate_trouble"] = trouble.text

    # An event with a clip, from the timeline.
    driver.get(base + "/#events")
    link = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events a.clip-link"))[0]
    link.click()
    wait.until(lambda d: d.execute_script(
        "const v = document.getElementById('player'); return v.readyState >= 1 && v.duration > 0;"))
    duration = driver.execute_script("return document.getElementById('player').duration;")
    middle = duration / 2
    driver.execute_script(
        "const v = document.getElementById('player'); v.muted = true;"
        "window.__seeked = false; v.addEventListener('seeked', () => window.__seeked = true, {once: true});"
        "v.currentTime = arguments[0];", middle)
    wait.until(lambda d: d.execute_script(
        "const v = document.getElementById('player'); return window.__seeked && v.readyState >= 2;"))
    at = driver.execute_script("return document.getElementById('player').currentTime;")
    if abs(at - middle) > 0.6:
        raise AssertionError(f"currentTime {at} after seeking to {middle}")
    # Frames decode: play a moment and count them.
    driver.execute_script("document.getElementById('player').play();")
    time.sleep(1.0)
    frames = driver.execute_script(
        "const q = document.getElementById('player').getVideoPlaybackQuality();"
        "return q.totalVideoFrames;")
    if not frames:
        raise AssertionError("no video frame decoded")
    driver.save_screenshot(outdir + "/dashboard-clip.png")
    seen.update({"duration": duration, "seeked_to": at, "decoded_frames": frames})

    # Users page (admin): add a viewer with a generated password, check it logs in,
    # reset the password, remove the user and check the login stops working.
    driver.get(base + "/#users")
    wait.until(lambda d: d.find_elements(By.ID, "user-" + user))
    driver.find_element(By.ID, "ua-name").send_keys("dave")
    driver.find_element(By.ID, "ua-generate").click()
    dave_pw = driver.find_element(By.ID, "ua-password").get_attribute("value")
    if len(dave_pw) != 20:
        raise AssertionError(f"generated password of length {len(dave_pw)}")
    driver.find_element(By.CSS_SELECTOR, "#user-add button[type=submit]").click()
    wait.until(lambda d: d.find_elements(By.ID, "user-dave"))
    login_status = ("return fetch('/api/events', {credentials: 'omit', headers: "
                    "{Authorization: 'Basic ' + btoa('dave:' + arguments[0])}}).then(r => r.status);")
    seen["dave_login"] = driver.execute_script(login_status, dave_pw)
    if seen["dave_login"] != 200:
        raise AssertionError(f"the added user cannot log in: {seen['dave_login']}")
    driver.find_element(By.ID, "up-name").send_keys("dave")
    driver.find_element(By.ID, "up-generate").click()
    new_pw = driver.find_element(By.ID, "up-password").get_attribute("value")
    # Every password change needs the changer's own current password.
    driver.find_element(By.ID, "up-current").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#user-passwd button[type=submit]").click()
    wait.until(lambda d: "changed" in d.find_element(By.ID, "users-msg").text)
    seen["dave_old_password"] = driver.execute_script(login_status, dave_pw)
    seen["dave_new_password"] = driver.execute_script(login_status, new_pw)
    if (seen["dave_old_password"], seen["dave_new_password"]) != (401, 200):
        raise AssertionError(f"password change did not apply: {seen}")
    driver.save_screenshot(outdir + "/dashboard-users.png")
    driver.find_element(By.CSS_SELECTOR, "#user-dave button.remove").click()
    wait.until(lambda d: d.switch_to.alert).accept()
    wait.until(lambda d: not d.find_elements(By.ID, "user-dave"))
    seen["dave_removed_login"] = driver.execute_script(login_status, new_pw)
    if seen["dave_removed_login"] != 401:
        raise AssertionError(f"a removed user still logs in: {seen}")

    # API tokens: made on the Users page and shown once; good for the API by Bearer,
    # never for the dashboard; revoked from the same table.
    driver.find_element(By.ID, "tk-name").send_keys("ci")
    driver.find_element(By.CSS_SELECTOR, "#token-add button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "tk-shown").text.startswith("stx_"))
    token = driver.find_element(By.ID, "tk-shown").text
    wait.until(lambda d: d.find_elements(By.ID, "token-ci"))
    bearer = ("return fetch(arguments[1], {credentials: 'omit', headers: "
              "{Authorization: 'Bearer ' + arguments[0]}}).then(r => r.status);")
    seen["token_api"] = driver.execute_script(bearer, token, "/api/events")
    seen["token_dashboard"] = driver.execute_script(bearer, token, "/")
    driver.find_element(By.CSS_SELECTOR, "#token-ci button").click()
    wait.until(lambda d: d.switch_to.alert).accept()
    wait.until(lambda d: not d.find_elements(By.ID, "token-ci"))
    seen["token_revoked"] = driver.execute_script(bearer, token, "/api/events")

    # Insights: the charts draw the events the API counts.
    driver.get(base + "/#insights")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-hours rect[data-label=manual]"))
    seen["chart_manual"] = driver.execute_script(
        "return [...document.querySelectorAll('#chart-hours rect[data-label=manual]')]"
        ".reduce((n, r) => n + Number(r.dataset.count), 0);")
    seen["bar_manual"] = driver.execute_script(
        "const r = document.querySelector('#chart-labels rect[data-label=manual]');"
        "return r ? Number(r.dataset.count) : 0;")
    seen["api_manual"] = driver.execute_script(
        "return fetch('/api/analytics?label=manual').then(r => r.json()).then(j => j.total);")
    driver.save_screenshot(outdir + "/dashboard-insights.png")

    # Notifications: the armed mode switches from the System page.
    driver.get(base + "/#system")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#armed button[aria-pressed=true]"))
    driver.find_element(By.CSS_SELECTOR, "#armed button[data-mode=away]").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#armed button[data-mode=away]")
               .get_attribute("aria-pressed") == "true")
    seen["armed"] = driver.execute_script("return fetch('/api/notify').then(r => r.json()).then(j => j.armed);")
    # The webhook nobody listens at: its row says what failed.
    row = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#target-hook td"))
    seen["target_row"] = [td.text for td in row]

    # "Test a camera": a probe of the test's camera shows its figures and its picture.
    driver.find_element(By.ID, "probe-url").send_keys(os.environ["SENTRIX_PROBE_URL"])
    driver.find_element(By.ID, "probe-go").click()
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('probe-picture');"
        "return !i.hidden && i.complete && i.naturalWidth > 0;"))
    seen["probe_text"] = driver.find_element(By.ID, "probe-msg").text
    seen["probe_picture_width"] = driver.execute_script(
        "return document.getElementById('probe-picture').naturalWidth;")
    driver.save_screenshot(outdir + "/dashboard-probe.png")

    # A phone-sized screen: no page scrolls sideways.
    driver.set_window_size(390, 844)
    overflow = {}
    for page, ready in [("live", "#grid video"), ("events", "#events li"), ("system", "#system dt"),
                        ("users", "#users tbody tr"), ("insights", "#chart-hours")]:
        driver.get(base + "/#" + page)
        wait.until(lambda d, sel=ready: d.find_elements(By.CSS_SELECTOR, sel))
        width = session.page_widths(driver)
        overflow[page] = width
        driver.save_screenshot(f"{outdir}/dashboard-phone-{page}.png")
    seen["phone_widths"] = overflow
    wide = {p: w for p, w in overflow.items() if w[0] > w[1] + 1}
    if wide:
        raise AssertionError(f"pages wider than a phone screen (scroll, client): {wide}")


if __name__ == "__main__":
    session.run("dashboard", steps)
