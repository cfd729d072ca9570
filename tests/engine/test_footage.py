"""The footage manifest (`train/footage.py`) across its two folders: the shared one every
measuring machine has, and the second one (`$CHAMELAION_FOOTAGE_EXTRA`) a machine may lack.

A machine without the second folder must train and measure on what it has, say what it
skipped, and keep every held-out clip, none of which may live in the second folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import footage
import pytest

EXTRA = [c for c in footage.CLIPS if c.extra]


def test_the_second_folder_holds_training_clips_only_with_their_provenance() -> None:
    assert EXTRA, "the manifest lists clips of the second folder"
    for clip in EXTRA:
        assert not clip.held_out, clip.name
        assert " @" in clip.source and ": " in clip.source, clip.source
        assert clip.terms in (*footage.CLEAR_TERMS, footage.NOT_STATED, footage.MEAD_TERMS)
    names = [c.name for c in footage.CLIPS]
    assert len(names) == len(set(names)), "a clip's name is its cache key: no two alike"


def test_clips_absent_from_this_machine_are_left_out_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHAMELAION_FOOTAGE_EXTRA", str(tmp_path / "absent"))
    held_out = footage.held_out_clips()
    assert not any(c.extra for c in footage.available())
    assert not any(c.extra for c in footage.training_clips(clear_terms_only=False))
    assert footage.held_out_clips() == held_out  # nothing held out depends on the second folder
    footage.report_missing(EXTRA)
    said = capsys.readouterr().out
    assert f"skipped {len(EXTRA)} clips absent on this machine" in said
    assert str(tmp_path / "absent" / EXTRA[0].name) in said


def test_a_clip_in_the_second_folder_is_found_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = footage.by_name("bbaf2n")  # a GRID clip of the shared folder, copied under a new name
    if not real.path.exists():
        pytest.skip(f"footage not available: {real.path}")
    clip = next(c for c in EXTRA if c.clear_terms)
    monkeypatch.setenv("CHAMELAION_FOOTAGE_EXTRA", str(tmp_path))
    clip.path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real.path, clip.path)
    assert clip.path == tmp_path / clip.name
    assert clip in footage.training_clips(clear_terms_only=True)
    assert clip not in footage.validation_clips(clear_terms_only=True)
    footage.report_missing([clip])
    assert capsys.readouterr().out == ""
