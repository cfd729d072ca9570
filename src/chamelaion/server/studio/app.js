// Chamelaion Studio: sign in with an API key, start jobs, follow them, compare the result.
// Everything the page shows comes from the public API (see api.js); data is put into the page
// as text nodes only, never as markup.

import { call, forgetKey, keepKey, storedKey, upload } from "./api.js";
import { LockStep } from "./player.js";
import { MouthPlot } from "./plot.js";

const PAGE_SIZE = 10;
const POLL_MS = 1500;
const ACTIVE = new Set(["queued", "processing"]);

const $ = (selector, root = document) => root.querySelector(selector);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

const signinForm = $("#signin-form");

async function signIn(key) {
  await call("/lipsync/requests?limit=1", { key }); // refuses a wrong key with its message
  keepKey(key);
}

function showStudio() {
  $("#signin").hidden = true;
  $("#studio").hidden = false;
  $("#sign-out").hidden = false;
  jobs.load();
  route();
}

function signOut(message = "") {
  forgetKey();
  jobs.stop();
  result.close();
  $("#studio").hidden = true;
  $("#sign-out").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  signinForm.api_key.focus();
}

/** Show an API error next to the form that caused it; a key refused mid-session signs out. */
function report(error, where) {
  if (error.status === 401) signOut(`Signed out: ${error.message}`);
  else where.textContent = error.message;
}

signinForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = signinForm.api_key;
  const button = $("button", signinForm);
  button.disabled = true;
  $("#signin-error").textContent = "";
  try {
    await signIn(field.value.trim());
    field.value = ""; // the key lives in sessionStorage only, not in the page
    showStudio();
  } catch (error) {
    $("#signin-error").textContent = `Sign-in failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
});

$("#sign-out").addEventListener("click", () => signOut());

// ---------------------------------------------------------------------------------------------
// New jobs

for (const slot of document.querySelectorAll(".options")) {
  slot.append($("#job-options").content.cloneNode(true));
}

/** The options both forms share, as the API names them; an empty reference_id is left out. */
function options(form) {
  const chosen = {
    sync_mode: form.sync_mode.value,
    disable_active_speaker_detection: form.disable_active_speaker_detection.checked,
  };
  if (form === uploadForm && speakerPick.point) chosen.speaker = speakerPick.point;
  if (form.reference_id.value) chosen.reference_id = form.reference_id.value;
  if (form.transcript.value.trim()) {
    chosen.transcript = form.transcript.value;
    chosen.transcript_language = form.transcript_language.value || "en";
  }
  return chosen;
}

async function submitting(form, send) {
  const button = $("button[type=submit]", form);
  const error = $(".error", form);
  button.disabled = true;
  error.textContent = "";
  try {
    const created = await send();
    form.reset();
    jobs.page = 0;
    jobs.load();
    location.hash = `#job/${created.request_id}`;
  } catch (failure) {
    report(failure, error);
  } finally {
    button.disabled = false;
  }
}

// The speaker point: the chosen video plays in a preview; a click on a face there records the
// frame shown and the place, as fractions of the picture (the API's `speaker`). The frame's
// index is its time times the frame rate, which a browser does not tell: it is measured as
// the preview plays its first frames once (requestVideoFrameCallback gives each frame's time).
const speakerPick = {
  box: $("#speaker-pick"),
  video: $("#speaker-pick video.pick"),
  seek: $("#speaker-pick .pick-seek"),
  mark: $("#speaker-pick .pick-mark"),
  shown: $("#speaker-pick .speaker-chosen"),
  clearButton: $("#speaker-pick .clear-speaker"),
  point: null,
  fps: 0,
  url: null,

  load(file) {
    this.clear();
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = file ? URL.createObjectURL(file) : null;
    this.fps = 0;
    this.box.hidden = !file;
    if (!file) {
      this.video.removeAttribute("src");
      return;
    }
    this.video.src = this.url;
    this.video.addEventListener("loadeddata", () => this.measureRate(), { once: true });
  },

  /** Play a few frames muted, timing them, then go back to the first. */
  measureRate() {
    const video = this.video;
    this.seek.max = String(video.duration || 0);
    if (!video.requestVideoFrameCallback) return;
    const times = [];
    const step = (_now, frame) => {
      times.push(frame.mediaTime);
      if (times.length < 4) {
        video.requestVideoFrameCallback(step);
        return;
      }
      video.pause();
      const gaps = times.slice(1).map((t, i) => t - times[i]).filter((gap) => gap > 0);
      if (gaps.length) this.fps = 1 / Math.min(...gaps);
      video.currentTime = 0;
    };
    video.requestVideoFrameCallback(step);
    video.play().catch(() => {}); // a browser that will not play it: frame 0 only
  },

  frameShown() {
    const time = this.video.currentTime;
    if (time === 0) return 0;
    return this.fps ? Math.round(time * this.fps) : null;
  },

  pick(event) {
    const frame = this.frameShown();
    if (frame === null) {
      this.shown.value = "This browser does not tell the frame: point at the first frame";
      return;
    }
    const rect = this.video.getBoundingClientRect();
    const fraction = (value) => Math.min(1, Math.max(0, Math.round(value * 1000) / 1000));
    this.point = {
      frame,
      x: fraction((event.clientX - rect.left) / rect.width),
      y: fraction((event.clientY - rect.top) / rect.height),
    };
    this.mark.style.left = `${this.point.x * 100}%`;
    this.mark.style.top = `${this.point.y * 100}%`;
    this.mark.hidden = false;
    this.clearButton.hidden = false;
    this.shown.value = `Face at x ${this.point.x}, y ${this.point.y} in frame ${frame}`;
  },

  clear() {
    this.point = null;
    this.mark.hidden = true;
    this.clearButton.hidden = true;
    this.shown.value = "No face pointed at";
  },
};
speakerPick.video.addEventListener("click", (event) => speakerPick.pick(event));
speakerPick.seek.addEventListener("input", () => {
  speakerPick.video.currentTime = Number(speakerPick.seek.value);
  speakerPick.clear(); // a point belongs to its frame
});
speakerPick.clearButton.addEventListener("click", () => speakerPick.clear());

const uploadForm = $("#upload-form");
uploadForm.video.addEventListener("change", () => speakerPick.load(uploadForm.video.files[0]));
uploadForm.addEventListener("reset", () => speakerPick.load(null));
uploadForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const meter = $("#upload-progress"); // outside the form, so its reset leaves the 100 % shown
  const shown = (fraction) => {
    $("progress", meter).value = fraction;
    $("output", meter).value = `${Math.floor(fraction * 100)} %`;
  };
  const body = new FormData(); // File objects: the browser streams them from disk
  body.append("video", uploadForm.video.files[0]);
  body.append("audio", uploadForm.audio.files[0]);
  for (const [name, value] of Object.entries(options(uploadForm))) {
    body.append(name, typeof value === "object" ? JSON.stringify(value) : String(value));
  }
  shown(0);
  meter.hidden = false;
  submitting(uploadForm, async () => {
    const created = await upload(body, shown);
    shown(1);
    return created;
  });
});

const urlForm = $("#url-form");
urlForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const json = {
    inputs: [
      { type: "video", url: urlForm.video_url.value },
      { type: "audio", url: urlForm.audio_url.value },
    ],
    ...options(urlForm),
  };
  submitting(urlForm, () => call("/lipsync/generate", { json }));
});

// ---------------------------------------------------------------------------------------------
// Status, as the list and the result view show it

/** The status word, and while a job runs its progress and stage when the API gives them. */
function statusOf(job) {
  const box = element("span", "status-box");
  box.append(element("span", `status status-${job.status}`, job.status));
  if (ACTIVE.has(job.status) && typeof job.progress === "number") {
    const bar = element("progress");
    bar.max = 1;
    bar.value = job.progress;
    bar.setAttribute("aria-label", "Progress");
    box.append(bar, element("span", "muted", `${Math.floor(job.progress * 100)} %`));
  }
  if (ACTIVE.has(job.status) && job.stage) box.append(element("span", "muted", job.stage));
  return box;
}

const when = (stamp) => new Date(stamp).toLocaleString();

// ---------------------------------------------------------------------------------------------
// The jobs list: newest first, a page at a time, refreshed while any job on it runs. The API
// lists oldest first, so a page is counted back from the end: one call learns the total, the
// next fetches the page's slice, shown reversed.

const jobs = {
  page: 0, // 0: the newest jobs
  reference: "",
  timer: 0,
  total: 0,

  stop() {
    clearTimeout(this.timer);
  },

  query(limit, offset) {
    const query = new URLSearchParams({ limit, offset });
    if (this.reference) query.set("reference_id", this.reference);
    return call(`/lipsync/requests?${query}`);
  },

  async load() {
    this.stop();
    let list;
    try {
      const { total } = (await this.query(1, 0)).pagination;
      const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
      this.page = Math.min(this.page, pages - 1);
      const end = total - this.page * PAGE_SIZE;
      const start = Math.max(0, end - PAGE_SIZE);
      list = end > 0 ? (await this.query(end - start, start)).data.reverse() : [];
      this.total = total;
    } catch (error) {
      report(error, $("#jobs-error"));
      return;
    }
    if (!storedKey()) return; // signed out while the calls were under way
    $("#jobs-error").textContent = "";
    this.render(list);
    if (list.some((job) => ACTIVE.has(job.status))) {
      this.timer = setTimeout(() => this.load(), POLL_MS);
    }
  },

  render(list) {
    const items = list.map((job) => {
      const link = element("a");
      link.href = `#job/${job.id}`;
      link.append(
        element("span", "job-name", job.reference_id ?? job.id.slice(0, 8)),
        statusOf(job),
        element("time", "muted", when(job.created_at)),
      );
      const item = element("li");
      item.dataset.id = job.id;
      if (job.id === result.id) link.setAttribute("aria-current", "true");
      item.append(link);
      return item;
    });
    $("#job-list").replaceChildren(...items);
    $("#jobs-empty").hidden = list.length > 0;
    $(".pager").hidden = this.total === 0;
    const first = this.page * PAGE_SIZE + 1;
    const last = this.page * PAGE_SIZE + list.length;
    $("#page-info").textContent = this.total ? `${first}–${last} of ${this.total}` : "";
    $("#newer").disabled = this.page === 0;
    $("#older").disabled = last >= this.total;
  },
};

$("#filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  jobs.reference = event.target.reference_id.value;
  jobs.page = 0;
  jobs.load();
});
$("#newer").addEventListener("click", () => {
  jobs.page = Math.max(0, jobs.page - 1);
  jobs.load();
});
$("#older").addEventListener("click", () => {
  jobs.page += 1;
  jobs.load();
});

// ---------------------------------------------------------------------------------------------
// One job: live status, then the output beside the source, the mouth plot, score and download

const outputVideo = $("video.output");
const sourceVideo = $("video.source");
const plot = new MouthPlot($("#plot"), (seconds) => player.seekTo(seconds));
const player = new LockStep({
  output: outputVideo,
  source: sourceVideo,
  button: $("#play"),
  seek: $("#seek"),
  clock: $("#clock"),
  onTime: (seconds) => plot.moveTo(seconds),
});
sourceVideo.addEventListener("error", () => {
  if (sourceVideo.getAttribute("src")) {
    $("#source-note").textContent = "(this browser cannot play its format)";
  }
});

const result = {
  id: null,
  timer: 0,
  mediaShown: false,

  async open(id) {
    if (id !== this.id) {
      this.close();
      this.id = id;
      $("#result").hidden = false;
      $("#no-result").hidden = true;
      $("#result-title").textContent = "Job";
      const heading = $("#result-title");
      heading.scrollIntoView({ block: "start" });
      heading.focus({ preventScroll: true });
    }
    await this.refresh();
  },

  close() {
    clearTimeout(this.timer);
    this.id = null;
    this.mediaShown = false;
    player.unload();
    plot.clear();
    $("#result").hidden = true;
    $("#no-result").hidden = false;
    $("#result-media").hidden = true;
  },

  async refresh() {
    clearTimeout(this.timer);
    const id = this.id;
    let job;
    try {
      job = await call(`/lipsync/requests/${encodeURIComponent(id)}`);
    } catch (error) {
      report(error, $("#result-meta"));
      return;
    }
    if (id !== this.id) return; // another job was opened meanwhile
    this.render(job);
    if (ACTIVE.has(job.status)) this.timer = setTimeout(() => this.refresh(), POLL_MS);
    else if (job.status === "completed" && !this.mediaShown) await this.showMedia(job);
  },

  render(job) {
    $("#result-title").textContent = job.reference_id ? `Job ${job.reference_id}` : "Job";
    const times = [`id ${job.id}`, `created ${when(job.created_at)}`];
    if (job.finished_at) times.push(`finished ${when(job.finished_at)}`);
    $("#result-meta").textContent = times.join(" · ");
    $("#result-status").replaceChildren(statusOf(job));
    const failure = $(".job-error");
    failure.hidden = job.status !== "failed";
    failure.textContent = job.status === "failed" ? job.error_message ?? "failed" : "";
  },

  async showMedia(job) {
    this.mediaShown = true;
    const id = job.id;
    const [source, track] = await Promise.all([
      call(`/lipsync/requests/${id}/source`).catch(() => null),
      call(`/lipsync/requests/${id}/mouth`).catch(() => null),
    ]);
    if (id !== this.id) return;
    $("#source-note").textContent = source ? "" : "(not kept for this job)";
    player.load(job.output_url, source?.url);
    if (track) plot.show(track);
    $("#plot-note").textContent = track ? "" : "(no mouth track for this job)";
    $("#sync-score").textContent = syncText(job.sync);
    // What the engine says a user should know: e.g. a transcript that was not used, and why.
    $("#notes").replaceChildren(
      ...(job.notes ?? []).map((note) => Object.assign(document.createElement("li"), { textContent: note })),
    );
    const download = $("#download");
    download.href = job.output_url;
    download.download = `chamelaion-${job.reference_id ?? id}.mp4`;
    $("#result-media").hidden = false;
  },
};

function syncText(sync) {
  if (!sync) return "Lip sync: not measured for this output.";
  const judged = Math.abs(sync.offset_frames) <= 1 ? "in sync" : "out of sync";
  return (
    `Lip sync measured on the output: offset ${sync.offset_frames} frames (${judged}), ` +
    `confidence ${sync.confidence.toFixed(3)}`
  );
}

function route() {
  const match = location.hash.match(/^#job\/(.+)$/);
  if (match && storedKey()) result.open(decodeURIComponent(match[1]));
  else result.close();
  for (const link of document.querySelectorAll("#job-list a")) {
    if (link.parentElement.dataset.id === result.id) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
}

window.addEventListener("hashchange", route);

if (storedKey()) {
  // A reload of a signed-in tab: check the key is still good before showing anything.
  signIn(storedKey()).then(showStudio, (error) => signOut(`Signed out: ${error.message}`));
} else {
  signOut();
}
