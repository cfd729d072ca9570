"""What a job would produce and cost, worked out from its inputs without starting it
(`POST /v1/lipsync/estimate[-with-media]`).

The output's length comes from the frame plan the engine renders (`timeline.plan_frames`) over
the probed lengths (the engine plans over the decoded ones, which may differ by a frame); the
processing time from the engine's
measured throughput, in output pixels per second, plus its fixed start-up and the output's
scoring pass.
"""

from __future__ import annotations

from pathlib import Path

from chamelaion.server.config import Settings
from chamelaion.server.schemas import JobOptions, LipsyncEstimate

# Loading the face mesh and the mouth model, and opening the media, before the first frame.
STARTUP_SECONDS = 2.0
# The output's lip-sync scoring pass after rendering, as a share of the output's duration.
SCORING_PER_OUTPUT_SECOND = 0.1
TOKENS_PER_JOB = 1


def estimate(settings: Settings, options: JobOptions, video: Path, audio: Path) -> LipsyncEstimate:
    """The estimate for `options` over two media files the upload check already accepted."""
    from chamelaion.engine.media import even_size, probe
    from chamelaion.engine.timeline import plan_frames

    video_info, audio_info = probe(video), probe(audio)
    plan = plan_frames(
        options.sync_mode, video_info.frame_count, video_info.fps, audio_info.duration
    )
    frames = len(plan)
    fps = float(video_info.fps)
    duration = frames / fps
    width, height = even_size(video_info.width, video_info.height)
    rendering = frames * width * height / settings.estimate_pixels_per_second
    processing = STARTUP_SECONDS + rendering + SCORING_PER_OUTPUT_SECOND * duration
    return LipsyncEstimate(
        duration=round(duration, 3),
        frames=frames,
        fps=round(fps, 3),
        tokens=TOKENS_PER_JOB,
        processing_seconds=round(processing, 1),
    )
