"""Chamelaion Studio in a real browser: Debian's chromium, driven by Playwright, against a real
`chamelaion serve` on loopback with one engine worker, with media the tests make.

Each state a person would look at is saved as a screenshot in `.artifacts/studio/` (not
committed). The flows: a wrong key is refused; sign in by keyboard, upload a video and a dub
(upload progress in percent), follow the job, watch the output play in step with the source,
read the mouth plot and the sync score, download the output and decode it, then the same page
on a phone-sized screen; a job from two URLs that fails shows the engine's message; the jobs
list pages back and forth, newest first; a running job's progress, percent and stage advance
live in the list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

import mediagen
from realserver import Key, Server, create_key, media_server, running

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "studio"
JOB_TIMEOUT_MS = 120_000
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Chromium reports every refused API call (a wrong key's 401) as a console error of its own.
REFUSED_CALL = re.compile(r"Failed to load resource: the server responded with a status of 401")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make setup installs it)"
)


class Studio:
    """A running service with a worker, a key, and a loopback media server for URL inputs."""

    def __init__(self, server: Server, key: Key, media_url: str) -> None:
        self.server, self.key, self.media_url = server, key, media_url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Iterator[Studio]:
    data_dir = tmp_path_factory.mktemp("studio")
    key = create_key(data_dir, "studio")
    server = Server(data_dir, workers=1, env={"CHAMELAION_ALLOW_PRIVATE_URLS": "true"})
    with running(server), media_server(media_dir) as media_url:
        yield Studio(server, key, media_url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


class Console:
    """Errors the page logs or throws; a test asserts on them at its end."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def open_page(browser: Browser, studio: Studio, viewport: ViewportSize) -> tuple[Page, Console]:
    page = browser.new_context(viewport=viewport, accept_downloads=True).new_page()
    console = Console(page)
    page.goto(studio.url)
    return page, console


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def sign_in(page: Page, key: str) -> None:
    field = page.locator("input[name=api_key]")
    expect(field).to_be_focused()  # the page puts the cursor there: type, then Enter
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def test_a_wrong_key_is_refused_with_the_api_message(browser: Browser, studio: Studio) -> None:
    page, console = open_page(browser, studio, DESKTOP)
    shot(page, "01-sign-in")
    sign_in(page, "chm_wrong_key")
    expect(page.locator("#signin-error")).to_have_text("Sign-in failed: invalid token")
    expect(page.locator("#studio")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    shot(page, "02-wrong-key")
    assert console.errors and all(REFUSED_CALL.search(e) for e in console.errors), console.errors
    page.context.close()


def test_upload_follow_compare_and_download(
    browser: Browser,
    studio: Studio,
    short_face_video: Path,
    short_speech: Path,
    tmp_path: Path,
) -> None:
    page, console = open_page(browser, studio, DESKTOP)
    sign_in(page, studio.key.key)
    expect(page.locator("#studio")).to_be_visible()
    shot(page, "03-signed-in")

    form = page.locator("#upload-form")
    form.locator("input[type=file][name=video]").set_input_files(short_face_video)
    form.locator("input[type=file][name=audio]").set_input_files(short_speech)
    form.locator("[name=sync_mode]").select_option("cut_off")
    form.locator("[name=disable_active_speaker_detection]").check()
    form.locator("[name=reference_id]").fill("studio-upload")
    # A script of another scene: the job completes all the same and says it was not used.
    form.locator("[name=transcript]").fill("Der Dieb floh durch die Hintertür des Ladens.")
    form.locator("[name=transcript_language]").fill("de-DE")
    # A slow uplink, so the upload takes a second and its progress shows on the way.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 150_000},
    )
    page.evaluate(
        """() => {
            const shown = document.querySelector('#upload-progress output');
            window.percentsShown = [];
            new MutationObserver(() => window.percentsShown.push(shown.value))
                .observe(shown, {childList: true, subtree: true, characterData: true});
        }"""
    )
    form.locator("button[type=submit]").click()
    percent = page.locator("#upload-progress output")
    expect(percent).not_to_have_text("0 %")
    shot(page, "04-uploading")
    expect(percent).to_have_text("100 %", timeout=30_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    percents = page.evaluate("window.percentsShown")
    assert any(0 < int(p.split()[0]) < 100 for p in percents), percents

    # The new job opens; its status follows the worker until it completes.
    result = page.locator("#result")
    expect(result).to_be_visible()
    expect(page.locator("#result-title")).to_have_text("Job studio-upload")
    expect(page.locator("#job-list li").first).to_contain_text("studio-upload")
    shot(page, "05-processing")
    expect(result.locator(".status")).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    output, source = page.locator("video.output"), page.locator("video.source")
    page.wait_for_function(
        "() => document.querySelector('video.output').readyState >= 2"
        " && document.querySelector('video.source').readyState >= 2"
    )
    expect(page.locator("#sync-score")).to_contain_text("Lip sync measured on the output")
    expect(page.locator("#notes")).to_contain_text("the transcript was not used")
    assert plotted_pixels(page) > 200
    shot(page, "06-completed")

    # One control, reached by keyboard, plays both; the output's time advances, the source's
    # follows it.
    page.locator("#result-title").focus()
    for _ in range(10):
        if page.evaluate("document.activeElement.id") == "play":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "play"
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('video.output').currentTime > 0.5")
    playing = page.evaluate(
        """() => {
            const [o, s] = ['video.output', 'video.source'].map(q => document.querySelector(q));
            return {output: o.currentTime, source: s.currentTime, paused: o.paused,
                    ready: o.readyState};
        }"""
    )
    assert playing["ready"] >= 2 and not playing["paused"], playing
    assert abs(playing["output"] - playing["source"]) < 0.3, playing
    later = output.evaluate("v => new Promise(r => setTimeout(() => r(v.currentTime), 300))")
    assert later > playing["output"]
    shot(page, "07-playing")
    page.locator("#play").click()  # pause

    # The download is the output, and it decodes.
    with page.expect_download() as download_info:
        page.locator("#download").click()
    saved = tmp_path / "output.mp4"
    download_info.value.save_as(saved)
    with av.open(str(saved)) as container:
        assert container.streams.video and container.streams.audio
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 45  # the 2 s video, cut to the dub's length

    # The key stays in this tab's storage: never in the address, the page or the logs.
    key = studio.key.key
    assert page.evaluate("sessionStorage.getItem('chamelaion.apiKey')") == key
    assert key not in page.url and key not in page.content()
    assert key not in studio.server.logs()
    assert source.evaluate("v => v.currentSrc.includes('/source?')")

    # A phone held upright: one column, nothing wider than the screen, the videos stacked.
    page.set_viewport_size(PHONE)
    page.evaluate("window.scrollTo(0, 0)")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    source_box, output_box = source.bounding_box(), output.bounding_box()
    assert source_box and output_box and output_box["y"] >= source_box["y"] + source_box["height"]
    assert output_box["width"] <= PHONE["width"]
    shot(page, "08-phone")

    # A reload keeps the tab signed in and the job open; signing out forgets the key.
    page.reload()
    expect(page.locator("#result-title")).to_have_text("Job studio-upload")
    page.locator("#sign-out").click()
    expect(page.locator("input[name=api_key]")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert console.errors == []
    page.context.close()


def plotted_pixels(page: Page) -> int:
    """How many pixels of the plot the mouth line coloured."""
    return int(
        page.evaluate(
            """() => {
                const canvas = document.querySelector('#plot');
                const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                                     canvas.height);
                let count = 0;  // the mouth colour, #d2452b: strongly red
                for (let i = 0; i < data.length; i += 4) {
                    if (data[i] > 150 && data[i + 1] < 110 && data[i + 2] < 90) count++;
                }
                return count;
            }"""
        )
    )


def test_a_failed_job_from_urls_shows_its_message(
    browser: Browser, studio: Studio, blank_video: Path, short_speech: Path
) -> None:
    page, console = open_page(browser, studio, PHONE)
    sign_in(page, studio.key.key)
    page.locator("#url-form").evaluate("form => form.closest('details').open = true")
    form = page.locator("#url-form")
    form.locator("[name=video_url]").fill(f"{studio.media_url}/{blank_video.name}")
    form.locator("[name=audio_url]").fill(f"{studio.media_url}/{short_speech.name}")
    form.locator("[name=reference_id]").fill("studio-faceless")
    form.locator("button[type=submit]").click()
    expect(page.locator("#result-title")).to_have_text("Job studio-faceless")
    failure = page.locator(".job-error")
    expect(failure).to_have_text("no face detected in video", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#result .status")).to_have_text("failed")
    expect(page.locator("#result-media")).to_be_hidden()
    shot(page, "09-failed")
    # The list is newest first (the API's is oldest first): this job heads it. Filtered by
    # reference_id, it holds this job alone.
    expect(page.locator("#job-list li").first).to_contain_text("studio-faceless")
    page.locator("#filter-form [name=reference_id]").fill("studio-faceless")
    page.locator("#filter-form button[type=submit]").click()
    expect(page.locator("#job-list li")).to_have_count(1)
    expect(page.locator("#job-list li")).to_contain_text("studio-faceless")
    expect(page.locator("#page-info")).to_have_text("1–1 of 1")
    assert console.errors == []
    page.context.close()


def test_the_jobs_list_pages_newest_first(browser: Browser, studio: Studio) -> None:
    """Twelve jobs of an account of their own (their media missing, so each fails at once):
    the first page shows the ten newest, newest first; Older shows the two oldest; Newer goes
    back. Buttons reached by keyboard."""
    key = create_key(studio.server.data_dir, "pager")
    names = [f"paged-{k:02d}" for k in range(12)]
    with httpx.Client(base_url=studio.server.api, headers={"x-api-key": key.key}) as api:
        for name in names:
            media = f"{studio.media_url}/missing-{name}"
            body = {
                "inputs": [{"type": "video", "url": f"{media}.mp4"},
                           {"type": "audio", "url": f"{media}.wav"}],
                "reference_id": name,
            }  # fmt: skip
            assert api.post("/lipsync/generate", json=body).status_code == 200
    page, console = open_page(browser, studio, DESKTOP)
    sign_in(page, key.key)
    items = page.locator("#job-list li")
    expect(page.locator("#page-info")).to_have_text("1–10 of 12")
    expect(items).to_have_count(10)
    expect(items.first).to_contain_text(names[-1])
    expect(items.last).to_contain_text(names[2])
    expect(page.locator("#newer")).to_be_disabled()
    page.locator("#older").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#page-info")).to_have_text("11–12 of 12")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text(names[1])
    expect(items.last).to_contain_text(names[0])
    expect(page.locator("#older")).to_be_disabled()
    shot(page, "10-older-jobs")
    page.locator("#newer").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#page-info")).to_have_text("1–10 of 12")
    expect(items.first).to_contain_text(names[-1])
    assert console.errors == []
    page.context.close()


def test_a_running_job_shows_its_progress_live(
    browser: Browser, studio: Studio, media_dir: Path
) -> None:
    """A job long enough to be seen running (a 6 s face looped over 30 s of speech): the list
    shows its progress bar, percent and stage, and the percent advances while it runs; then it
    is cancelled, and the list says so."""
    speech = mediagen.phrases_with_gaps(["hello mama", "good morning", "see you soon"], gap=0.5)
    while speech.duration < 30.0:
        speech = speech + speech
    audio = mediagen.write_wav(media_dir / "studio_long.wav", speech)
    video = mediagen.write_face_video(media_dir / "studio_long.mp4", 6.0, 25.0, 320, 240)
    key = create_key(studio.server.data_dir, "progress")
    with httpx.Client(base_url=studio.server.api, headers={"x-api-key": key.key}) as api:
        with video.open("rb") as v, audio.open("rb") as a:
            response = api.post(
                "/lipsync/generate-with-media",
                files={"video": v, "audio": a},
                data={"sync_mode": "loop", "reference_id": "studio-running"},
            )
        request_id = response.json()["request_id"]
        page, console = open_page(browser, studio, DESKTOP)
        sign_in(page, key.key)
        item = page.locator("#job-list li").first
        expect(item).to_contain_text("studio-running")
        expect(item.locator("progress")).to_be_visible(timeout=JOB_TIMEOUT_MS)
        shown = page.wait_for_function(
            "() => { const bar = document.querySelector('#job-list li progress');"
            " return bar && bar.value > 0 ? bar.value : null; }",
            timeout=JOB_TIMEOUT_MS,
        ).json_value()
        expect(item).to_contain_text(re.compile(r"\d+ %"))
        expect(item).to_contain_text(re.compile("analysing|rendering|scoring"))
        shot(page, "11-running")
        page.wait_for_function(
            f"() => {{ const bar = document.querySelector('#job-list li progress');"
            f" return !bar || bar.value > {shown}; }}",
            timeout=JOB_TIMEOUT_MS,
        )  # it advances (or has finished)
        assert api.post(f"/lipsync/requests/{request_id}/cancel").status_code == 200
    expect(item.locator(".status")).to_have_text(re.compile("cancelled|completed"))
    assert console.errors == []
    page.context.close()


def test_the_page_is_served_with_a_strict_policy(studio: Studio) -> None:
    response = httpx.get(studio.url)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="/studio/app.js">'
    ]  # no inline script
    assert "<style" not in html and " style=" not in html
    assert "api_key" in html and "chm_" not in html  # a field for the key, never a key


def test_a_click_on_a_face_in_the_preview_is_the_requests_speaker(
    browser: Browser, studio: Studio, media_dir: Path, short_speech: Path
) -> None:
    """The chosen video plays in a preview; a click records the frame shown (its time by the
    frame rate the page measured) and the place; Clear forgets it; the upload sends it."""
    two_faces = mediagen.write_left_speaks(media_dir)  # 25 fps, faces at x 0.27 and 0.73
    page, console = open_page(browser, studio, DESKTOP)
    sign_in(page, studio.key.key)
    form = page.locator("#upload-form")
    form.locator("input[type=file][name=video]").set_input_files(two_faces)
    form.locator("input[type=file][name=audio]").set_input_files(short_speech)
    preview, chosen = form.locator("video.pick"), form.locator(".speaker-chosen")
    expect(preview).to_be_visible()
    expect(chosen).to_have_text("No face pointed at")
    page.wait_for_function(
        "() => { const v = document.querySelector('video.pick');"
        " return v.readyState >= 2 && v.paused && v.currentTime === 0; }"
    )
    box = preview.bounding_box()
    assert box is not None
    preview.click(position={"x": 0.27 * box["width"], "y": 0.5 * box["height"]})
    expect(chosen).to_have_text(re.compile(r"^Face at x 0\.2\d+, y 0\.\d+ in frame 0$"))
    expect(form.locator(".pick-mark")).to_be_visible()
    form.locator(".clear-speaker").click()
    expect(chosen).to_have_text("No face pointed at")
    # One second in: frame 25 at the 25 fps the page measured.
    form.locator(".pick-seek").evaluate(
        "seek => { seek.value = '1'; seek.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function("() => document.querySelector('video.pick').currentTime === 1")
    preview.click(position={"x": 0.73 * box["width"], "y": 0.5 * box["height"]})
    expect(chosen).to_contain_text("in frame 25")
    shot(page, "12-speaker-pointed")
    form.locator("[name=reference_id]").fill("studio-pointed")
    form.locator("button[type=submit]").click()
    expect(page.locator("#result-title")).to_have_text("Job studio-pointed")
    expect(preview).to_be_hidden()  # the form is reset for the next job
    headers = {"x-api-key": studio.key.key}
    base = f"{studio.url}v1/lipsync/requests"
    job = httpx.get(f"{base}/studio-pointed", headers=headers).json()
    speaker = job["speaker"]
    assert speaker["frame"] == 25
    assert abs(speaker["x"] - 0.73) < 0.01 and abs(speaker["y"] - 0.5) < 0.01
    httpx.post(f"{base}/{job['id']}/cancel", headers=headers)  # the worker is for other tests
    assert console.errors == []
    page.context.close()
