"""Real talking-head footage: which clips exist, what may be done with them, and their landmarks.

The clips live outside the repository: they are third-party media and are never committed. Most
are in `../shared/footage/` (or `$CHAMELAION_FOOTAGE`), which every machine that measures has;
clips found later (`extra=True`) are in a second folder, `../footage-extra/` (or
`$CHAMELAION_FOOTAGE_EXTRA`), which a machine may lack: a clip that is absent is left out of
training and measuring (`available`), and the training scripts print which (`report_missing`).
Nothing held out lives there, so the held-out figures and the tests never depend on it. This
module is the manifest the training scripts, the benchmarks and the real-footage tests share:

- every clip with its provenance terms, language and speaker, and its role: `train` clips may
  be learned from; `held_out` clips never are, so figures measured on them say something;
- `load(clip)`: the clip's per-frame face landmarks (the largest face, mediapipe's mesh) and its
  speech as 16 kHz mono, extracted once and cached under `.cache/footage/` (not committed).

Terms decide what shipped weights may learn from: `CLEAR_TERMS` clips are public-domain US
government works, the GRID corpus (CC BY 4.0) and CREMA-D (Open Database License 1.0 and
Database Contents License 1.0); the rest state no terms or research terms.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chamelaion.engine import media  # noqa: E402
from chamelaion.engine.faces import LANDMARK_COUNT, LandmarkDetector, box_of  # noqa: E402

PUBLIC_DOMAIN = "public domain (US federal government work)"
GRID_TERMS = "GRID audiovisual corpus, CC BY 4.0 (Cooke, Barker, Cunningham, Shao 2006)"
# CREMA-D's LICENSE.txt: "made available under the Open Database License
# (http://opendatacommons.org/licenses/odbl/1.0/). Any rights in individual contents of the
# database are licensed under the Database Contents License
# (http://opendatacommons.org/licenses/dbcl/1.0/)"; attribution is in the data card.
CREMA_D_TERMS = (
    "CREMA-D, Open Database License 1.0 (database) and Database Contents License 1.0 (contents)"
    " (Cao, Cooper, Keutmann, Gur, Nenkova, Verma 2014)"
)
# The attribution the data cards of weights learned from CREMA-D carry.
CREMA_D_ATTRIBUTION = (
    "Contains clips of CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (Cao,\n"
    "Cooper, Keutmann, Gur, Nenkova, Verma, IEEE Transactions on Affective Computing 5(4),\n"
    "2014; https://github.com/CheyneyComputerScience/CREMA-D), made available under the Open\n"
    "Database License (http://opendatacommons.org/licenses/odbl/1.0/); its contents under the\n"
    "Database Contents License (http://opendatacommons.org/licenses/dbcl/1.0/)."
)


MEAD_TERMS = "MEAD corpus, research terms"
NOT_STATED = "not stated"
CLEAR_TERMS = (PUBLIC_DOMAIN, GRID_TERMS, CREMA_D_TERMS)
CACHE_VERSION = 2  # raised whenever what `load` extracts changes


@dataclass(frozen=True)
class Clip:
    name: str  # file name under the footage folder
    speaker: str  # clips of one speaker share it: a held-out speaker is never trained on
    language: str
    terms: str
    source: str  # repository @ commit: path
    held_out: bool = False
    extra: bool = False  # in the second folder (`extra_footage_dir`), which a machine may lack

    @property
    def path(self) -> Path:
        return (extra_footage_dir() if self.extra else footage_dir()) / self.name

    @property
    def clear_terms(self) -> bool:
        return self.terms in CLEAR_TERMS


def attribution(clips: list[Clip]) -> str:
    """What a data card of weights learned from `clips` must credit ("" if nothing): CREMA-D's
    licences ask it."""
    return CREMA_D_ATTRIBUTION if any(c.terms == CREMA_D_TERMS for c in clips) else ""


_STYLETALK = "FuxiVirtualHuman/styletalk @17b046cb: samples/source_video/"
_EDTALK = "tanshuai0219/EDTalk @06a9a968: test_data/"
_RETALKING = "OpenTalker/video-retalking @d32e8e58: examples/face/"
_GRID = "rizkiarm/LipNet @bec592aa: evaluation/samples/GRID/"
_MEAD = "filby89/spectre @0b339a84: samples/MEAD/"
_SADTALKER = "OpenTalker/SadTalker @cd4c0465: examples/ref_video/"
_GRID_UPLOADS = "AnshSareen/Deep-Learning-Based-Lip-Reading @562907f7: backend/uploads/videos/"
_GRID_S1 = "f1driv/SilentSpeak @5f230b66: LipNet/data/s1/"
# CREMA-D's own repository (CheyneyComputerScience/CREMA-D @1658cd34: VideoFlash/) holds Git LFS
# pointers only, as do its forks seen; these six clips of actor 1001 are the only CREMA-D video
# found committed as media, each byte for byte the corpus's (SHA-256 = its LFS pointer's oid).
_CREMA_D = "Strong-AI-Lab/emotion @30815b10: tests/test_data/data/"
# 150 of the 998 clips of GRID's speaker 1 in _GRID_S1 (all but bbaf2n and bbas1s, which are
# here already), drawn at random (seed 0), so no choice of ours picks which of them train.
GRID_S1_CLIPS = """
    bbal9a bbbs7a bbie9s bbil4p bbil5a bbwg2p bbwm4n bbwt1a bbwtzp bgah2p bgat8n bgat9s bgbn9s
    bgin3a bgwh9s bram2n bram3s bras6n brbg5a brbm7s brbt3a brif5s brim1a briz8p brwg8p brwt5s
    bwbhzp bwis9s bwwn6n bwwn7s bwwu3a bwwuzn lbak2p lbax8n lbbk6p lbbk7a lbby5a lbid4p lbij7s
    lbwk8n lbwr3s lbwy9a lgaf4n lgbg1a lgbgzp lgif1s lgir9s lgwg3s lgwm8p lgwt1s lgwtzn lrar3a
    lrby9s lrbzzp lrid8n lrik4p lrik5a lrwl7a lwar8p lwazzn lwir3s lwiy8p lwwm2p lwwmzn lwwz8n
    pbac1s pbav3s pbbc4n pbbc5s pbbi9s pbbj1a pbbp5a pbbv6n pbbv9a pbib9a pbiu8n pbwj2n pbwj3s
    pbwp7s pbwxzn pgae1a pgaq7s pgay1s pgbe2n pgbe3s pgbr3a pgid6p pgik1a pgiq3s pgix7s pgwe7s
    pgwlzn praj2p prbj4n prbp8n pripzn priv6p prwj9s pwbk1s pwbx8n pwby1a pwbyzp pwip6n pwwe1s
    pwwezn pwwrzp sbaa4n sban3s sban4p sbat7s sbbb1a sbbbzp sbbh2n sbbn7s sbig5s sbim8n sbin1a
    sbwb3s sbwo1s sbwo3a sgac3s sgai7s sgap3a sgbj3a sgbp4n sgbxzp sgib9s srab3a srabzn srau3s
    srih1s srih3a srin6p srit8n srwb9s srwo8p swao4n swao5s swavzp swbc2p swbi6p swib2n swih9a
    swiozn swiu4n swwc5s swwc7a swwi9s swwp5a swwv7s
""".split()  # noqa: SIM905 (150 names: a list literal would take 150 lines)

CLIPS: tuple[Clip, ...] = (
    # Training clips.
    Clip("styletalk_Obama_clip1.mp4", "obama", "en", PUBLIC_DOMAIN, _STYLETALK),
    Clip("styletalk_Obama_clip2.mp4", "obama", "en", PUBLIC_DOMAIN, _STYLETALK),
    Clip("styletalk_Obama_clip3.mp4", "obama", "en", PUBLIC_DOMAIN, _STYLETALK),
    Clip("edtalk_uncrop_Obama.mp4", "obama", "en", PUBLIC_DOMAIN, _EDTALK),
    Clip("edtalk_pose_source2.mp4", "congressman", "en", PUBLIC_DOMAIN, _EDTALK),
    *(
        # Speakers named by the command's first letter, not known: except bbaf2n, the one file
        # here that is also among GRID speaker 1's clips (_GRID_S1, byte for byte).
        Clip(
            f"grid/{n}.mpg",
            "grid-s1" if n == "bbaf2n" else f"grid-{n[:1]}",
            "en",
            GRID_TERMS,
            _GRID,
        )
        for n in (
            "bbaf2n",
            "brbk7n",
            "lbax4n",
            "lbbc2a",
            "lrwp9a",
            "lwbsza",
            "pwij3p",
            "sbia1a",
            "sbwe5n",
            "swiz3n",
        )
    ),
    # Training clips in the second folder (found 2026-12-02, see its SOURCES.md). HDTF's
    # "WDA" clips are Weekly Democratic Addresses: official videos of members of Congress, as
    # edtalk_pose_source2 is; Trump_10s is an Oval Office address.
    Clip(
        "sadtalker_WDA_AlexandriaOcasioCortez_000.mp4",
        "ocasio-cortez",
        "en",
        PUBLIC_DOMAIN,
        _SADTALKER,
        extra=True,
    ),
    Clip("sadtalker_WDA_KatieHill_000.mp4", "hill", "en", PUBLIC_DOMAIN, _SADTALKER, extra=True),
    Clip(
        "mimictalk_Trump_10s.mp4",
        "trump",
        "en",
        PUBLIC_DOMAIN,
        "yerfor/MimicTalk @44bde25e: data/raw/examples/Trump_10s.mp4",
        extra=True,
    ),
    Clip(
        "grid/id2_vcd_swwp2s.mpg",
        "grid-s2",
        "en",
        GRID_TERMS,
        "rizkiarm/LipNet @bec592aa: evaluation/samples/id2_vcd_swwp2s.mpg",
        extra=True,
    ),
    *(
        # The first is GRID speaker 1's bbas1s (byte for byte); the others are not speaker 1's.
        Clip(
            f"grid/{n}.mpg",
            "grid-s1" if k == 0 else f"grid-upload-{k}",
            "en",
            GRID_TERMS,
            _GRID_UPLOADS,
            extra=True,
        )
        for k, n in enumerate(
            (
                "video_20251208_015857_cac80689",
                "video_20251208_032621_6a59e295",
                "video_20251208_032953_826b5db2",
                "video_20251208_120232_93ae3d4b",
                "video_20251208_122715_edff7a1c",
            )
        )
    ),
    *(
        Clip(f"grid/s1/{n}.mpg", "grid-s1", "en", GRID_TERMS, _GRID_S1, extra=True)
        for n in GRID_S1_CLIPS
    ),
    *(
        # One sentence ("Don't forget a jacket") in six emotions, 480x360 at 29.97 fps, 2 s each.
        Clip(
            f"crema-d/1001_DFA_{e}_XX.flv", "crema-1001", "en", CREMA_D_TERMS, _CREMA_D, extra=True
        )
        for e in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    ),
    Clip(
        "headpose_31.mp4",
        "headpose-31",
        "en",
        NOT_STATED,
        "yiranran/Audio-driven-TalkingFace-HeadPose @8ebc0283: Data/31.mp4",
        extra=True,
    ),
    Clip("styletalk_andrew_clip_1.mp4", "andrew", "en", NOT_STATED, _STYLETALK),
    Clip("styletalk_andrew_clip_2.mp4", "andrew", "en", NOT_STATED, _STYLETALK),
    Clip("styletalk_feifeili_clip1.mp4", "feifeili", "en", NOT_STATED, _STYLETALK),
    Clip("styletalk_feifeili_clip2_short.mp4", "feifeili", "en", NOT_STATED, _STYLETALK),
    Clip("styletalk_feifeili_clip3.mp4", "feifeili", "en", NOT_STATED, _STYLETALK),
    Clip("edtalk_mouth_source.mp4", "edtalk-mouth", "en", NOT_STATED, _EDTALK),
    Clip("dfrf_cnn2_25fps.mp4", "cnn2", "en", NOT_STATED, "sstzal/DFRF @2c7bd69c: dataset/vids/"),
    Clip("retalking_face_1.mp4", "retalking-1", "en", NOT_STATED, _RETALKING),
    Clip("retalking_face_4.mp4", "retalking-4", "en", NOT_STATED, _RETALKING),
    Clip("retalking_face_5.mp4", "retalking-5", "en", NOT_STATED, _RETALKING),
    *(
        Clip(f"mead/{n}.mp4", f"mead-{n[:4]}", "en", MEAD_TERMS, _MEAD)
        for n in (
            "M003_level_1_disgusted_015",
            "M026_level_3_disgusted_018",
            "M030_level_3_angry_016",
            "W023_level_2_surprised_010",
            "W036_level_3_happy_007",
            "W040_level_3_happy_029",
        )
    ),
    # Held out: speakers never trained on, two of them in other languages.
    Clip("styletalk_reagan_clip1.mp4", "reagan", "en", PUBLIC_DOMAIN, _STYLETALK, True),
    Clip("styletalk_KristiNoem.mp4", "noem", "en", NOT_STATED, _STYLETALK, True),
    Clip(
        "dfrf_french.mp4", "french", "fr", NOT_STATED, "sstzal/DFRF @2c7bd69c: dataset/vids/", True
    ),
    Clip(
        "mimictalk_German_20s.mp4",
        "german",
        "de",
        NOT_STATED,
        "yerfor/MimicTalk @a79f90ed: data/raw/examples/",
        True,
    ),
    Clip(
        "infinitetalk_ref_video.mp4",
        "infinitetalk",
        "en",
        NOT_STATED,
        "MeiGen-AI/InfiniteTalk @0107cd96: examples/single/",
        True,
    ),
    Clip(
        "real3dportrait_May_5s.mp4",
        "may",
        "en",
        NOT_STATED,
        "yerfor/Real3DPortrait @a9d70c7e: data/raw/examples/",
        True,
    ),
    Clip("retalking_face_2.mp4", "retalking-2", "en", NOT_STATED, _RETALKING, True),
)


def footage_dir() -> Path:
    return Path(os.environ.get("CHAMELAION_FOOTAGE", ROOT.parent / "shared" / "footage"))


def extra_footage_dir() -> Path:
    return Path(os.environ.get("CHAMELAION_FOOTAGE_EXTRA", ROOT.parent / "footage-extra"))


def cache_dir() -> Path:
    return Path(os.environ.get("CHAMELAION_CACHE", ROOT / ".cache")) / "footage"


def available(clips: tuple[Clip, ...] | list[Clip] = CLIPS) -> list[Clip]:
    return [c for c in clips if c.path.exists()]


def report_missing(clips: tuple[Clip, ...] | list[Clip] = CLIPS) -> None:
    """Say which clips of the manifest this machine lacks: a model trained here learns without
    them, and its data card lists only what it learned from."""
    missing = [c for c in clips if not c.path.exists()]
    if missing:
        print(f"skipped {len(missing)} clips absent on this machine: "
              + ", ".join(str(c.path) for c in missing), flush=True)  # fmt: skip


def training_clips(clear_terms_only: bool) -> list[Clip]:
    return [c for c in available() if not c.held_out and (c.clear_terms or not clear_terms_only)]


def validation_clips(clear_terms_only: bool) -> list[Clip]:
    """Clips to choose a model's settings on: for the shipped (clear-terms) weights, the
    training clips whose terms keep them out of its training; speakers it never learns from,
    and not the held-out clips, whose figures must stay untouched by any choice. Empty when
    every training clip is learned from."""
    return (
        [c for c in available() if not c.held_out and not c.clear_terms] if clear_terms_only else []
    )


def held_out_clips() -> list[Clip]:
    return [c for c in available() if c.held_out]


def by_name(name: str) -> Clip:
    for clip in CLIPS:
        if clip.name == name or Path(clip.name).stem == name:
            return clip
    raise KeyError(name)


@dataclass(frozen=True)
class Footage:
    """A clip as the models see it: landmarks per video frame, speech at 16 kHz."""

    clip: Clip
    fps: float
    landmarks: NDArray[Any]  # (frames, 478, 2) float32 pixels, NaN where no face was found
    audio: NDArray[Any]  # float32 mono, 16 kHz, time 0 = the first video frame

    @property
    def frames(self) -> int:
        return len(self.landmarks)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def load(clip: Clip) -> Footage:
    """The clip's landmarks and speech, from the cache or extracted now (a few seconds a clip)."""
    cached = cache_dir() / (clip.name.replace("/", "__") + f".v{CACHE_VERSION}.npz")
    if cached.exists() and cached.stat().st_mtime >= clip.path.stat().st_mtime:
        data = np.load(cached)
        return Footage(clip, float(data["fps"]), data["landmarks"], data["audio"])
    info = media.probe(clip.path)
    landmarks = extract_landmarks(clip.path, info.fps)
    audio = media.read_audio(clip.path, with_video=True)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.partial.npz")  # tests run in two processes
    np.savez(partial, fps=float(info.fps), landmarks=landmarks, audio=audio)
    partial.replace(cached)
    return Footage(clip, float(info.fps), landmarks, audio)


def extract_landmarks(path: Path, fps: Fraction) -> NDArray[Any]:
    """The largest face's landmarks in every frame (NaN where none was found)."""
    rows = []
    with LandmarkDetector(max_faces=1) as detect:
        for rgb in media.read_frames(path, fps):
            faces = detect(rgb)
            if faces:
                rows.append(max(faces, key=lambda f: box_of(f).area))
            else:
                rows.append(np.full((LANDMARK_COUNT, 2), np.nan, np.float32))
    return np.array(rows, dtype=np.float32).reshape(-1, LANDMARK_COUNT, 2)


if __name__ == "__main__":
    # python train/footage.py [--part K/N]: extract (and cache) every available clip.
    part, parts = 0, 1
    report_missing()
    if len(sys.argv) == 3 and sys.argv[1] == "--part":
        part, parts = (int(x) for x in sys.argv[2].split("/"))
    for k, c in enumerate(available()):
        if k % parts == part:
            f = load(c)
            found = float(np.mean(~np.isnan(f.landmarks[:, 0, 0])))
            print(f"{c.name}: {f.frames} frames at {f.fps:.2f} fps, {f.seconds:.1f} s, "
                  f"face {found:.0%}", flush=True)  # fmt: skip
