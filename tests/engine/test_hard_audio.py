"""Audio the mouth model was not made for, on whole engine jobs: music under the speech, a
whisper, a shout, another language, music alone. Each has a defined result, never a crash: the
job completes, the face is re-animated in every frame, the result says the speaker's range
came from the prior (the source is silent), and where there is speech the mouth moves more
than in the silence before it."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
from numpy.typing import NDArray

import mediagen
from chamelaion.engine import LipsyncOptions, SyncMode, lipsync

LEAD_IN = 0.8  # seconds of silence before the speech: a pause, so the lips rest there
SECONDS = 3.0
FPS = 25.0


def _chord(seconds: float, rate: int, level: float) -> NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    tones: NDArray[np.float64] = sum(
        np.sin(2 * np.pi * f * t) for f in (196.0, 247.0, 294.0, 392.0)
    )
    return (level * tones / 4).astype(np.float32)


def _audio(kind: str) -> mediagen.Speech:
    text = "my mother made me a marvellous meal"
    voice, gain = {
        "whisper": ("en+whisper", 1.0),
        "shout": ("en", 12.0),
        "german": ("de", 1.0),
    }.get(kind, ("en", 1.0))
    speech = mediagen.speak("mein Mann malt Bilder am Meer" if kind == "german" else text, voice)
    lead = mediagen.silence(LEAD_IN, speech.sample_rate)
    whole = lead + speech
    samples = np.clip(whole.samples * gain, -1.0, 1.0)  # a shout: loud and clipped
    rate = speech.sample_rate
    samples = np.pad(samples, (0, max(0, round(SECONDS * rate) - len(samples))))
    if kind == "music under speech":
        samples = samples + _chord(len(samples) / rate, rate, 0.3)
    if kind == "music alone":
        samples = _chord(len(samples) / rate, rate, 0.3)
    return mediagen.Speech(np.clip(samples, -1.0, 1.0).astype(np.float32), rate, [])


def _frames(path: Path) -> list[NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        return [
            cast("NDArray[np.uint8]", f.to_ndarray(format="rgb24"))
            for f in container.decode(video=0)
        ]


@pytest.fixture(scope="module")
def face_video(media_dir: Path) -> Path:
    return mediagen.write_face_video(media_dir / "hard_audio_face.mp4", SECONDS, FPS, 320, 240)


@pytest.mark.parametrize(
    "kind", ["music under speech", "whisper", "shout", "german", "music alone"]
)
def test_hard_audio_has_a_defined_result(tmp_path: Path, face_video: Path, kind: str) -> None:
    audio = mediagen.write_wav(tmp_path / "audio.wav", _audio(kind))
    out = tmp_path / "out.mp4"
    result = lipsync(face_video, audio, out, LipsyncOptions(sync_mode=SyncMode.CUT_OFF))
    assert result.frames == round(SECONDS * FPS)
    assert result.face_frames == result.frames
    assert any("typical range of real talking heads" in note for note in result.notes)
    source, output = _frames(face_video), _frames(out)
    assert len(output) == result.frames
    change = np.array(
        [
            np.abs(o.astype(np.float32) - s.astype(np.float32)).mean()
            for s, o in zip(source, output, strict=False)
        ]
    )
    assert np.isfinite(change).all()
    if kind != "music alone":
        resting = change[: round((LEAD_IN - 0.2) * FPS)].mean()
        speaking = change[round((LEAD_IN + 0.2) * FPS) : round((LEAD_IN + 1.6) * FPS)].mean()
        assert speaking > resting + 0.05, f"{kind}: speech {speaking:.3f}, silence {resting:.3f}"
