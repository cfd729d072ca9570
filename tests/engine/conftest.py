"""Fixtures for the engine tests: generated speech with known phoneme timings, face videos."""

from __future__ import annotations

from pathlib import Path

import pytest

import mediagen

# Word-medial bilabials (/m/, /b/, /p/ between vowels), close and open vowels, silent gaps.
ARTICULATION_PHRASES = [
    "mama booboo papa",
    "beebee meemee",
    "baby hobby happy",
    "mommy bubble",
    "teepee seesaw",
]


@pytest.fixture(scope="session")
def articulation_speech() -> mediagen.Speech:
    return mediagen.phrases_with_gaps(ARTICULATION_PHRASES, gap=0.7)


@pytest.fixture(scope="session")
def articulation_wav(media_dir: Path, articulation_speech: mediagen.Speech) -> Path:
    return mediagen.write_wav(media_dir / "articulation.wav", articulation_speech)


@pytest.fixture(scope="session")
def silent_face_video(media_dir: Path, articulation_speech: mediagen.Speech) -> Path:
    """640x480, 25 fps, as long as the articulation speech: a face that never speaks."""
    return mediagen.write_face_video(
        media_dir / "silent_face.mp4", articulation_speech.duration, 25.0, 640, 480
    )
