"""End to end in headless Chromium (Debian's ``chromium`` + ``chromium-driver``, through Selenium).

Opens the page, uploads the bundled example's mix, runs ``dialog_only``, waits for the stems, checks
that playback advances on the AudioContext clock, that mute/solo change the exported mix as
expected (against ``FasTUSS.process``, the path of ``fastuss separate``, with the same gains), that
a corrupt upload shows its error; saves ``mixer.png`` in the test's tmp folder (also to
``$FASTUSS_SCREENSHOT`` when set). The ``browser`` fixture (conftest) skips where no browser is
installed, except in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import Client, start, wait_for

from fastuss_fx.io import read_audio, write_audio
from fastuss_fx.presets import load_preset
from fastuss_fx.serve import ServeConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def example_server(tmp_path: Path):
    # the shipped trained weights (deterministic, and faster here than `tiny`'s 1-s windows);
    # FASTUSS_SERVE_TEST_MODEL=tiny runs the untrained test model instead
    model = os.environ.get("FASTUSS_SERVE_TEST_MODEL", "fastuss-causal")
    config = ServeConfig(work=tmp_path / "work", port=0, engine="torch", model=model, allow_untrained=model == "tiny")
    server, thread = start(config)
    yield server
    server.shutdown()
    server.close()
    thread.join(5)


def click_stem(driver, stem: str, button: str) -> None:
    driver.find_element("css selector", f'.stem[data-stem="{stem}"] .{button}').click()


def export(driver, client: Client, tmp_path: Path, name: str) -> np.ndarray:
    driver.execute_script("mixer.lastExport = null")
    driver.find_element("id", "export").click()
    url = wait_for(driver, "return mixer.lastExport && mixer.lastExport.url", 30)
    status, raw = client.get(url)
    assert status == 200
    (tmp_path / name).write_bytes(raw)
    return read_audio(tmp_path / name)[0]


def test_mixer_end_to_end(browser, example_server, tmp_path: Path):
    from fastuss_fx.demo import load_example

    example = load_example()
    source = write_audio(tmp_path / "example.wav", example.mixture, 48000)
    client = Client(example_server.url())
    browser.get(example_server.url())
    wait_for(browser, "return document.querySelectorAll('#preset option').length > 0", 20)
    assert browser.find_element("id", "preset").get_attribute("value") == "dialog_only"

    browser.find_element("id", "file").send_keys(str(source))
    browser.find_element("id", "run").click()
    wait_for(browser, "return !document.getElementById('mixer').hidden && Object.keys(mixer.controls).length === 3")
    assert browser.execute_script("return mixer.stems") == ["dialogue", "effects", "music"]

    # playback advances on the shared AudioContext clock
    browser.find_element("id", "play").click()
    start_clock = browser.execute_script("return mixer.ctx.currentTime")
    wait_for(browser, "return mixer.position() > 0.3", 15)
    assert browser.execute_script("return mixer.ctx.currentTime") > start_clock
    assert browser.execute_script("return mixer.ctx.state") == "running"
    browser.find_element("id", "play").click()  # pause
    paused = browser.execute_script("return mixer.position()")
    time.sleep(0.3)
    assert browser.execute_script("return mixer.position()") == paused
    # A/B: the original's bus replaces the stems' bus
    browser.find_element("id", "ab-original").click()
    assert browser.execute_script("return [mixer.stemBus.gain.value, mixer.originalGain.gain.value]") == [0, 1]
    browser.find_element("id", "ab-stems").click()
    # a loop region keeps the clock inside it
    browser.execute_script("""document.getElementById('loop').checked = true;
        document.getElementById('loop-start').value = '1'; document.getElementById('loop-end').value = '1.4';""")
    browser.find_element("id", "play").click()
    time.sleep(1.0)
    assert 1.0 <= browser.execute_script("return mixer.position()") <= 1.4
    browser.find_element("id", "play").click()
    browser.execute_script("document.getElementById('loop').checked = false")
    browser.find_element("css selector", '.stem[data-stem="dialogue"] canvas').click()  # click the middle: seek there
    assert abs(browser.execute_script("return mixer.position()") - 3.0) < 0.1
    browser.save_screenshot(str(tmp_path / "mixer.png"))
    spectrum = """const c = document.querySelector('.stem[data-stem="dialogue"] canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return new Set(Array.from(d.filter((_, i) => i % 4 === 0))).size;"""
    from selenium.webdriver.support.select import Select

    Select(browser.find_element("id", "view")).select_by_value("spec")
    assert browser.execute_script(spectrum) > 50  # many shades of red: a spectrogram, not a flat line
    browser.save_screenshot(str(tmp_path / "spectrogram.png"))
    Select(browser.find_element("id", "view")).select_by_value("wave")
    if os.environ.get("FASTUSS_SCREENSHOT"):  # e.g. the README's image
        shutil.copyfile(tmp_path / "mixer.png", os.environ["FASTUSS_SCREENSHOT"])

    # exports follow mute and solo; the preset's mix is the starting point (dialogue only)
    audio, rate = read_audio(source)
    processor = example_server.app.jobs.processor("dialog_only", None)

    def cli_mix(mix: dict[str, float]) -> np.ndarray:
        """What `fastuss separate` writes with these gains (dB): FasTUSS.process with the preset's mix changed."""
        processor.update(mix=mix)
        return processor.process(audio, rate)

    first = export(browser, client, tmp_path, "dialogue.wav")
    np.testing.assert_allclose(first, cli_mix({"dialogue": 0.0}), atol=1e-4)
    click_stem(browser, "effects", "mute")  # unmute effects
    both = export(browser, client, tmp_path, "dialogue_effects.wav")
    np.testing.assert_allclose(both, cli_mix({"dialogue": 0.0, "effects": 0.0}), atol=1e-4)
    assert np.abs(both - first).max() > 1e-3
    click_stem(browser, "music", "solo")  # music is still muted (the preset removes it): mute beats solo
    solo = export(browser, client, tmp_path, "solo.wav")
    assert np.abs(solo).max() == 0.0
    click_stem(browser, "music", "mute")
    solo = export(browser, client, tmp_path, "solo.wav")
    np.testing.assert_allclose(solo, cli_mix({"music": 0.0}), atol=1e-4)
    processor.update(mix={"dialogue": 0.0})
    browser.find_element("id", "export-stems").click()
    files = wait_for(browser, "return mixer.lastStems && mixer.lastStems.files", 30)
    assert [f["name"].split("_dialog_only_")[1].split("_")[0] for f in files] == ["dialogue", "effects", "music"]

    # the preset editor saves the current mix (music solo, +0 dB) as YAML that `fastuss separate -p` loads
    browser.find_element("id", "preset-from-mix").click()
    assert "music: 0.0" in browser.find_element("id", "preset-yaml").get_attribute("value")
    browser.find_element("id", "preset-save").click()
    saved = wait_for(browser, "return mixer.savedPreset || mixer.presetError", 20)
    assert isinstance(saved, dict), saved
    status, raw = client.get(saved["url"])
    assert status == 200
    (tmp_path / "custom.yaml").write_bytes(raw)
    assert dict(load_preset(tmp_path / "custom.yaml").mix) == {"music": 0.0}
    assert browser.find_element("id", "preset").get_attribute("value") == "dialog_only_custom"

    # a corrupt upload shows its error and the page keeps working
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 20)
    browser.find_element("id", "file").send_keys(str(bad))
    browser.find_element("id", "run").click()
    message = wait_for(browser, "return mixer.error", 20, allow_error=True)
    assert "corrupt.wav" in message and "decode" in message
    assert browser.find_element("id", "error").is_displayed()
    browser.save_screenshot(str(tmp_path / "error.png"))
    assert client.get("/api/presets")[0] == 200
    assert (tmp_path / "mixer.png").stat().st_size > 10_000


def test_page_with_a_token(browser, tmp_path: Path):
    server, thread = start(ServeConfig(work=tmp_path / "work", port=0, token="s3cret"))
    try:
        browser.get(server.url())  # the printed URL carries the token; the page sends it with every API call
        wait_for(browser, "return document.querySelectorAll('#preset option').length > 0", 20)
        browser.get(server.url().split("?")[0])  # without it the page loads but the API refuses
        assert "token" in wait_for(browser, "return mixer.error", 20, allow_error=True)
    finally:
        server.shutdown()
        server.close()
        thread.join(5)
