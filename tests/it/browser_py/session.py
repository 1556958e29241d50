"""What every browser test script starts with: headless Debian Chromium through
chromedriver, a patient wait, and a login through the login page."""
import json
import sys

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def start(width=1280, height=900):
    """A headless Chromium that trusts any certificate and plays video without a gesture,
    and a 20 s wait that polls again through navigations and stale elements (the test
    binary runs beside other tests, and a loaded machine widens those windows)."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--ignore-certificate-errors", f"--window-size={width},{height}",
                "--autoplay-policy=no-user-gesture-required"]:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    return driver, WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,))


def login(driver, wait, base, user, password):
    """Logs in on the login page; returns the header's "who" text."""
    driver.get(base + "/")
    wait.until(lambda d: d.current_url.endswith("/login"))
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    wait.until(lambda d: user in d.find_element(By.ID, "who").text)
    return driver.find_element(By.ID, "who").text


def page_widths(driver):
    """[scrollWidth, clientWidth] of the page: a page wider than its window scrolls
    sideways."""
    return driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];")


def run(name, steps):
    """Runs `steps(driver, wait, base, user, password, outdir, seen)` (the script's
    arguments: BASE_URL USER PASSWORD OUTDIR) in a fresh headless Chromium, then prints
    `seen` as one JSON line. On any failure: a screenshot OUTDIR/NAME-failure.png, the
    reason, what was seen and the browser console on stderr, and exit status 1."""
    base, user, password, outdir = sys.argv[1:5]
    driver, wait = start()
    seen = {}
    try:
        steps(driver, wait, base, user, password, outdir, seen)
        print(json.dumps(seen), flush=True)
    except Exception as e:  # noqa: BLE001 - report whatever went wrong, with the page
        driver.save_screenshot(f"{outdir}/{name}-failure.png")
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        print(f"{name} test failed: {type(e).__name__}: {e}; seen {seen}; console {logs}", file=sys.stderr)
        sys.exit(1)
    finally:
        driver.quit()
