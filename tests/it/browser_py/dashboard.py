#!/usr/bin/python3
"""Drives the dashboard in headless Debian Chromium (chromedriver, selenium): log in on the
login page, see a live tile play, open an event's clip, seek to the middle and check
currentTime is there with a frame decoded; then, on the Users page, add a user with a
generated password, change it and remove the user, checking each with a real login; and at
a phone's 390x844 no page scrolls sideways. Screenshots go to OUTDIR. Prints one JSON line of
what it saw; exits 1 with the reason on any failure.

usage: dashboard.py BASE_URL USER PASSWORD OUTDIR
"""
import time

from selenium.webdriver.common.by import By

import session


def steps(driver, wait, base, user, password, outdir, seen):
    seen["logged_in"] = session.login(driver, wait, base, user, password)

    # A live tile plays the camera's own stream (fMP4 over a WebSocket into MSE).
    wait.until(lambda d: d.execute_script(
        "const v = document.querySelector('#grid video');"
        "return v && v.readyState >= 3 && v.currentTime > 1;"))
    seen["tile_width"] = driver.execute_script(
        "return document.querySelector('#grid video').videoWidth;")
    driver.save_screenshot(outdir + "/dashboard-live.png")

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
