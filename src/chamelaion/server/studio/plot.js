// The output's mouth opening drawn over its sound wave on one time axis, with a playhead.
// The track comes from GET /v1/lipsync/requests/{id}/mouth: {fps, opening[], waveform}.

const AXIS_PX = 18; // room under the plot for the time labels
const MIN_OPENING_SCALE = 0.4; // a quiet track is not blown up to fill the height

export class MouthPlot {
  constructor(canvas, onSeek) {
    this.canvas = canvas;
    this.track = null;
    this.time = 0;
    this.background = document.createElement("canvas"); // everything but the playhead
    canvas.addEventListener("click", (event) => {
      if (!this.track) return;
      const box = canvas.getBoundingClientRect();
      onSeek(((event.clientX - box.left) / box.width) * this.duration());
    });
    new ResizeObserver(() => this.render()).observe(canvas);
  }

  show(track) {
    this.track = track;
    this.render();
  }

  clear() {
    this.track = null;
    this.render();
  }

  duration() {
    const { fps, opening, waveform } = this.track;
    return Math.max(opening.length / fps, waveform.peaks.length / waveform.rate, 1e-3);
  }

  /** Redraw the background at the canvas's current size, then the playhead. */
  render() {
    const { canvas, background } = this;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    background.width = canvas.width;
    background.height = canvas.height;
    if (this.track) this.drawBackground(background.getContext("2d"), ratio);
    this.moveTo(this.time);
  }

  moveTo(seconds) {
    this.time = seconds;
    const context = this.canvas.getContext("2d");
    const { width, height } = this.canvas;
    context.clearRect(0, 0, width, height);
    if (!this.track) return;
    context.drawImage(this.background, 0, 0);
    const x = (seconds / this.duration()) * width;
    context.fillStyle = colour("--playhead");
    context.fillRect(Math.round(x), 0, Math.max(1, window.devicePixelRatio || 1), height);
  }

  drawBackground(context, ratio) {
    const { width, height } = context.canvas;
    const plotHeight = height - AXIS_PX * ratio;
    const duration = this.duration();
    const xOf = (seconds) => (seconds / duration) * width;
    drawWave(context, this.track.waveform, duration, plotHeight);
    drawMouth(context, this.track, xOf, plotHeight, ratio);
    drawAxis(context, duration, xOf, plotHeight, ratio);
  }
}

function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function drawWave(context, { rate, peaks }, duration, plotHeight) {
  const middle = plotHeight / 2;
  const { width } = context.canvas;
  context.fillStyle = colour("--wave");
  // One bar per pixel column: the loudest bin it covers (a short clip stretches each bin over
  // several columns, a long one gathers several bins into one).
  for (let column = 0; column < width; column++) {
    const first = Math.floor((column / width) * duration * rate);
    const last = Math.max(first + 1, Math.floor(((column + 1) / width) * duration * rate));
    let peak = 0;
    for (let bin = first; bin < Math.min(last, peaks.length); bin++) peak = Math.max(peak, peaks[bin]);
    const half = Math.max(0.5, peak * middle * 0.95);
    if (first < peaks.length) context.fillRect(column, middle - half, 1, 2 * half);
  }
}

function drawMouth(context, { fps, opening }, xOf, plotHeight, ratio) {
  const top = opening.reduce((most, v) => (v !== null && v > most ? v : most), MIN_OPENING_SCALE);
  const yOf = (value) => plotHeight - (value / top) * (plotHeight - 4 * ratio) - 2 * ratio;
  context.strokeStyle = colour("--mouth");
  context.lineWidth = 2 * ratio;
  context.lineJoin = "round";
  context.beginPath();
  let drawing = false; // a gap (no face re-animated) breaks the line
  opening.forEach((value, frame) => {
    if (value === null) {
      drawing = false;
      return;
    }
    const x = xOf((frame + 0.5) / fps);
    if (drawing) context.lineTo(x, yOf(value));
    else context.moveTo(x, yOf(value));
    drawing = true;
  });
  context.stroke();
}

function drawAxis(context, duration, xOf, plotHeight, ratio) {
  const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => duration / s <= 10) ?? 600;
  context.fillStyle = colour("--muted");
  context.font = `${11 * ratio}px system-ui, sans-serif`;
  context.textBaseline = "top";
  context.fillRect(0, plotHeight, context.canvas.width, ratio);
  for (let t = 0; t <= duration + 1e-6; t += step) {
    const x = Math.min(xOf(t), context.canvas.width - ratio);
    context.fillRect(x, plotHeight, ratio, 4 * ratio);
    context.textAlign = t === 0 ? "left" : x > context.canvas.width - 30 * ratio ? "right" : "center";
    context.fillText(`${Number(t.toFixed(1))} s`, x, plotHeight + 5 * ratio);
  }
}
