"""The page's controls in headless Chromium, on the quick ``micro`` test variant: free prompts, level
meters, and a browser closed while its job (on a 30-s file) runs. Each test takes a few seconds.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from serve_helpers import MICRO, RATE, Client, chrome, handler_threads, settle, start, tone, wait_for, worker_threads

from fastuss_fx.io import write_audio
from fastuss_fx.serve import ServeConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def micro_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    (root / "served").mkdir()
    write_audio(root / "served" / "clip.wav", tone(2.0), RATE)
    long = 0.1 * np.random.default_rng(2).standard_normal((1, 30 * RATE))
    write_audio(root / "served" / "long.wav", long.astype(np.float32), RATE, "16")
    config = ServeConfig(
        folder=root / "served", work=root / "work", port=0, engine="torch", model=str(MICRO), allow_untrained=True
    )
    server, thread = start(config)
    yield server
    server.shutdown()
    server.close()
    thread.join(5)


def open_page(driver, server, query: str = "") -> None:
    driver.get(server.url() + query)
    wait_for(driver, "return document.querySelectorAll('#prompt-words button').length === 8", 20)


def pick(driver, name: str) -> None:
    from selenium.webdriver.support.select import Select

    Select(driver.find_element("id", "pick")).select_by_value(name)


def run_prompts(driver, text: str, file: str = "clip.wav") -> None:
    box = driver.find_element("id", "prompts")
    box.clear()
    box.send_keys(text)
    pick(driver, file)
    driver.find_element("id", "run").click()


def test_free_prompts_without_a_preset(browser, micro_server):
    open_page(browser, micro_server)
    assert browser.find_element("id", "with-preset").is_selected()
    for word in ("speech", "sfx"):  # the vocabulary's buttons fill the prompt box and choose it
        browser.find_element("css selector", f'#prompt-words button[data-word="{word}"]').click()
    assert browser.find_element("id", "prompts").get_attribute("value") == "speech, sfx"
    assert browser.find_element("id", "with-prompts").is_selected()
    assert "Free prompts" in browser.find_element("id", "preset-info").text
    pick(browser, "clip.wav")
    browser.find_element("id", "run").click()
    wait_for(browser, "return !document.getElementById('mixer').hidden && Object.keys(mixer.controls).length === 2", 60)
    assert browser.execute_script("return [mixer.stems, mixer.job.preset, mixer.job.prompts]") == [
        ["speech", "sfx"],
        "prompts:speech+sfx",
        ["speech", "sfx"],
    ]
    assert browser.execute_script("return effectiveGains()") == {"speech": 1, "sfx": 1}  # no preset: all at 0 dB
    browser.find_element("id", "preset-from-mix").click()  # and they can become a preset
    assert "prompts: [speech, sfx]" in browser.find_element("id", "preset-yaml").get_attribute("value")

    run_prompts(browser, "speech nope")  # typed by hand, with a mistake: the schema's message, in the page
    message = wait_for(browser, "return mixer.error", 20, allow_error=True)
    assert "unknown prompt 'nope'" in message and "musicbg" in message
    assert browser.find_element("id", "error").is_displayed()


def levels(driver) -> dict[str, float]:
    """Each meter's bar as drawn (percent of its -60..0 dBFS scale), and the master's as ``_out``."""
    return driver.execute_script("""const out = {};
        for (const row of document.querySelectorAll('.stem')) {
          out[row.dataset.stem] = parseFloat(row.querySelector('.meter div').style.height) || 0;
        }
        out._out = parseFloat(document.querySelector('#master-meter span').style.width) || 0;
        return out;""")


def test_level_meters_follow_playback(browser, micro_server):
    t = np.arange(3 * RATE) / RATE
    swell = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 1.5 * t)))[None].astype(np.float32)
    steady = 0.05 * tone(3.0)
    job = micro_server.app.jobs.add_result({"swell": swell, "steady": steady}, RATE)  # stems known to the sample
    open_page(browser, micro_server, f"?job={job.id}")
    wait_for(browser, "return !document.getElementById('mixer').hidden && Object.keys(mixer.controls).length === 2", 20)
    time.sleep(0.3)
    assert levels(browser) == {"swell": 0, "steady": 0, "_out": 0}  # stopped: silent
    browser.execute_script("document.getElementById('loop').checked = true")
    browser.find_element("id", "play").click()
    wait_for(browser, "return mixer.position() > 0.1", 10)
    seen = []
    for _ in range(12):
        seen.append(levels(browser))
        time.sleep(0.08)
    swells = [s["swell"] for s in seen]
    assert min(swells) > 0 and max(swells) - min(swells) > 5, swells  # it moves with the swell
    assert all(s["steady"] > 0 and s["_out"] > 0 for s in seen), seen
    assert np.mean([s["swell"] for s in seen]) > np.mean([s["steady"] for s in seen])  # louder stem, higher bar

    browser.find_element("css selector", '.stem[data-stem="steady"] .mute').click()
    steady = "document.querySelector('.stem[data-stem=\"steady\"] .meter div')"
    wait_for(browser, f"return parseFloat({steady}.style.height) === 0", 5)
    assert levels(browser)["swell"] > 0  # a muted stem's meter drops, the others play on
    browser.find_element("css selector", '.stem[data-stem="swell"] .mute').click()
    wait_for(browser, "return parseFloat(document.querySelector('#master-meter span').style.width) === 0", 5)
    browser.find_element("id", "ab-original").click()  # the master meter shows what is heard: now the original
    wait_for(browser, "return parseFloat(document.querySelector('#master-meter span').style.width) > 0", 5)
    browser.find_element("id", "play").click()  # pause: every meter falls to zero
    wait_for(
        browser,
        """return parseFloat(document.querySelector('#master-meter span').style.width) === 0
        && [...document.querySelectorAll('.stem .meter div')].every((d) => parseFloat(d.style.height) === 0)""",
        5,
    )


def test_browser_closed_mid_job(browser, micro_server):  # `browser`: skip (or fail in CI) without Chromium
    client = Client(micro_server.url())
    connections, workers = handler_threads(), worker_threads()
    driver = chrome()
    try:
        open_page(driver, micro_server)
        run_prompts(driver, "vocals, other", file="long.wav")
        wait_for(driver, "return document.getElementById('progress').value > 0", 60)
        job_id, progress = driver.execute_script("return [mixer.jobId, document.getElementById('progress').value]")
    finally:
        driver.quit()  # the browser goes away while its job runs
    assert 0 < progress < 0.95
    assert client.get("/api/presets")[0] == 200  # the server serves on
    assert client.wait(job_id)["state"] == "done"  # the job finishes (and is cached for a reopened page)
    assert settle(handler_threads, connections) <= connections  # the browser's connections' threads ended
    assert worker_threads() == workers  # still the one worker
    _, again = client.post("/api/jobs", {"pick": "clip.wav", "prompts": ["bass"]})
    assert client.wait(again["id"])["state"] == "done"
