"""`transcript` from the SDK, through the API, to the engine and back: a script of another
scene completes the job all the same, and the request's `notes` say it was not used."""

from __future__ import annotations

from pathlib import Path

from sdk.live import Live

JOB_TIMEOUT = 300.0


def test_a_transcript_that_does_not_match_comes_back_as_a_note(
    live_worker: Live, short_face_video: Path, short_speech: Path
) -> None:
    with live_worker.client() as client:
        job = client.lipsync.generate_with_media(
            video=short_face_video,
            audio=short_speech,  # says "hello mama"
            transcript="Le voleur s'est enfui par la porte de derrière de la boutique.",
            transcript_language="fr-FR",
        )
        done = client.lipsync.requests.wait(job.request_id, timeout=JOB_TIMEOUT, poll_interval=0.5)
    assert done.status == "completed", done.error_message
    assert done.notes is not None
    assert any(note.startswith("the transcript was not used") for note in done.notes)
