#!/usr/bin/python3
"""The live view in headless Debian Chromium: the H.264 camera's tile plays through MSE
(readyState >= 3, currentTime advancing) and stays within 1 s of the newest picture
(buffered.end - currentTime, sampled 4 times a second for 30 s); the H.265 camera's tile,
which this Chromium cannot decode, shows the MJPEG fallback. Then it prints RESTART, the
test restarts the camera and answers "restarted" on stdin, and the tile must play again
within 5 s, with no page reload. Prints one JSON line of what it saw last; exits 1 with
the reason on any failure.

usage: live.py BASE_URL USER PASSWORD OUTDIR
"""
import statistics
import sys
import time

import session

PLAYING = ("const v = document.querySelector('#view-cam video');"
           "return v ? [v.readyState, v.currentTime] : [0, 0];")
DISTANCE = ("const v = document.querySelector('#view-cam video'), b = v.buffered;"
            "return b.length ? b.end(b.length - 1) - v.currentTime : null;")


def playing(driver, wait):
    """Waits until the tile has frames and its clock moves; returns its currentTime."""
    wait.until(lambda d: d.execute_script(PLAYING)[0] >= 3)
    start = driver.execute_script(PLAYING)[1]
    wait.until(lambda d: d.execute_script(PLAYING)[1] > start + 0.5)
    return driver.execute_script(PLAYING)[1]


def steps(driver, wait, base, user, password, outdir, seen):
    seen["logged_in"] = session.login(driver, wait, base, user, password)
    driver.get(base + "/#live")
    playing(driver, wait)
    seen["tile"] = driver.execute_script(
        "const t = document.getElementById('view-cam');"
        "return [t.dataset.mode, t.querySelector('.live-info').textContent];")

    # 30 s at the live edge.
    distances, first = [], driver.execute_script(PLAYING)[1]
    until = time.monotonic() + 30
    while time.monotonic() < until:
        d = driver.execute_script(DISTANCE)
        if d is not None:
            distances.append(d)
        time.sleep(0.25)
    played = driver.execute_script(PLAYING)[1] - first
    seen["edge_s"] = {"median": statistics.median(distances), "max": max(distances),
                      "samples": len(distances), "played_s": played}
    if max(distances) > 1.0 or played < 25:
        raise AssertionError(f"not live: {seen['edge_s']}")
    driver.save_screenshot(outdir + "/live-tiles.png")

    # The H.265 camera: the browser refuses the codec, the tile shows MJPEG instead.
    wait.until(lambda d: d.execute_script(
        "const t = document.getElementById('view-hevc'), i = t && t.querySelector('img');"
        "return t && t.dataset.mode === 'fallback' && i && i.naturalWidth > 0;"))
    seen["hevc"] = driver.execute_script(
        "return document.querySelector('#view-hevc .live-info').textContent;")

    # The camera restarts: the tile plays again by itself.
    streams = driver.execute_script("return document.getElementById('view-cam').dataset.streams;")
    print("RESTART", flush=True)
    if sys.stdin.readline().strip() != "restarted":
        raise AssertionError("the test did not restart the camera")
    back = time.monotonic()
    wait.until(lambda d: d.execute_script(
        "return document.getElementById('view-cam').dataset.streams;") != streams)
    playing(driver, wait)
    seen["replay_s"] = time.monotonic() - back
    if seen["replay_s"] > 5:
        raise AssertionError(f"played again only after {seen['replay_s']:.1f} s")
    seen["reloads"] = driver.execute_script("return performance.getEntriesByType('navigation').length;")
    driver.save_screenshot(outdir + "/live-after-restart.png")


if __name__ == "__main__":
    session.run("live", steps)
