// Two videos played in lock-step by one control. The output leads (it carries the dub's
// sound); the muted source is pulled back to the output's time whenever it drifts.

const DRIFT_SECONDS = 0.08; // about two frames: less is invisible, and each re-seek stalls

export const clockText = (seconds) => {
  const whole = Math.max(0, seconds || 0);
  const minutes = Math.floor(whole / 60);
  return `${minutes}:${(whole - minutes * 60).toFixed(1).padStart(4, "0")}`;
};

export class LockStep {
  /** `onTime(seconds)` is called as the position moves (the plot draws its playhead). */
  constructor({ output, source, button, seek, clock, onTime }) {
    Object.assign(this, { output, source, button, seek, clock, onTime });
    this.frame = 0;
    button.addEventListener("click", () => (output.paused ? this.play() : this.pause()));
    seek.addEventListener("input", () => this.seekTo(Number(seek.value)));
    output.addEventListener("loadedmetadata", () => this.show());
    output.addEventListener("timeupdate", () => this.show());
    output.addEventListener("ended", () => this.pause());
    output.addEventListener("pause", () => this.stopFollowing());
  }

  /** Load a new pair (source may be null when the service kept none). */
  load(outputUrl, sourceUrl) {
    this.pause();
    this.output.src = outputUrl;
    if (sourceUrl) this.source.src = sourceUrl;
    else this.source.removeAttribute("src");
    this.source.load();
    this.show();
  }

  unload() {
    this.pause();
    for (const video of [this.output, this.source]) {
      video.removeAttribute("src");
      video.load();
    }
  }

  async play() {
    if (this.output.ended) this.seekTo(0);
    this.button.textContent = "Pause";
    this.follow();
    try {
      await Promise.all([this.output.play(), this.playSource()]);
    } catch (error) {
      if (error.name !== "AbortError") this.pause(); // a pause() during play() is not an error
    }
  }

  playSource() {
    if (!this.source.currentSrc || this.output.currentTime >= this.source.duration) {
      return Promise.resolve();
    }
    return this.source.play();
  }

  pause() {
    this.output.pause();
    this.source.pause();
    this.button.textContent = "Play";
    this.stopFollowing();
    this.show();
  }

  seekTo(seconds) {
    this.output.currentTime = seconds;
    if (this.source.currentSrc) this.source.currentTime = Math.min(seconds, this.source.duration || 0);
    this.show();
  }

  follow() {
    const step = () => {
      const lead = this.output.currentTime;
      const { source } = this;
      if (source.currentSrc && lead < source.duration) {
        if (Math.abs(source.currentTime - lead) > DRIFT_SECONDS) source.currentTime = lead;
        if (source.paused && !this.output.paused) source.play().catch(() => {});
      } else if (!source.paused) {
        source.pause(); // the source is shorter (loop, bounce, remap): hold its last frame
      }
      this.show();
      this.frame = requestAnimationFrame(step);
    };
    this.stopFollowing();
    this.frame = requestAnimationFrame(step);
  }

  stopFollowing() {
    cancelAnimationFrame(this.frame);
  }

  show() {
    const duration = Number.isFinite(this.output.duration) ? this.output.duration : 0;
    const now = this.output.currentTime;
    this.seek.max = String(duration);
    this.seek.value = String(now);
    this.clock.value = `${clockText(now)} / ${clockText(duration)}`;
    this.onTime(now, duration);
  }
}
