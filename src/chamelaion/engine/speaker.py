"""Which face to re-animate in each frame: the face pointed at, the active speaker, or the
largest face.

Pointed at (`LipsyncOptions.speaker`): the face track whose box holds the point in its frame
(else the one whose box is nearest, within `NEAR_FACE` of a face's size), for the track's
whole life; the same person in other tracks (other shots, or after the tracker lost the face)
only where `identity` recognises them clearly. Elsewhere no face is re-animated, and a note
says where: someone else is never animated in their place.

Active speaker detection reads the source video's own sound: within each shot, over sliding
windows, the learned sync scorer (`engine/sync.py`) measures how clearly each face's lips agree
with the sound: the window's median embedding distance over offsets of ±15 frames minus its
distance at the shot's sound-to-picture offset (measured once per shot, within ±`SYNC_LAG`
frames: the source's own sound is in sync up to a little recording delay); the face that agrees
best names the window, if it does so clearly.
Each frame then goes to the face that wins most of the windows around it, a window counting
most at its centre (frames no window decides keep the nearest decision up to a second away: a
pause is not a change of speaker), and choices shorter than half a second are absorbed by
their neighbours, so the choice follows a change of speaker without flickering; where one
face's turn gives way to another's, the change is then placed at the frame where the two faces'
per-frame agreement with the sound best divides (windows alone find it only within half a
window). Where that cannot decide (one face only, no sound, no speech, or no face clearly in
sync), the largest face is used, and a note says so.

Given only per-frame loudness (`SourceSpeech.samples` absent), the windows are judged by the
earlier measure, each face's mouth opening correlated with loudness: it picks a mouth that opens
with loudness, which real speakers' mouths do not reliably do, so it is a fallback for callers
that do not pass the samples, not a measure of sync.

Max-face: the largest face on screen, with hysteresis, so two faces of similar size do not make
the choice flicker: the current face keeps the role until another is clearly larger
(`SWITCH_RATIO`) for `SWITCH_FRAMES` frames in a row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chamelaion.engine import identity, sync
from chamelaion.engine.errors import SpeakerPointError
from chamelaion.engine.faces import FaceBox, FaceTrack, box_of
from chamelaion.engine.geometry import inner_gap
from chamelaion.engine.options import SpeakerPoint

SWITCH_RATIO = 1.25
SWITCH_FRAMES = 5
WINDOW_SECONDS = 2.0
HOP_SECONDS = 0.5
MAX_LAG = 2
MIN_CORRELATION = 0.3
MIN_MARGIN = 0.15
# The learned scorer's windows. bench/speaker.py, real two-speaker composites, speaking face
# chosen: held-out clips 18/18 with 2 s or 3 s windows; clips the scorer never saw 62/78 with
# 2 s, 68/78 with 3 s (a longer window averages out chance matches of the silent face).
SYNC_WINDOW_SECONDS = 3.0
SYNC_LAG = 5
MIN_SYNC_CONFIDENCE = 0.01
MIN_SYNC_MARGIN = 0.01
MAX_MISSING = 0.4  # a face missing from more of a window than this does not compete in it
MIN_SPEECH_SHARE = 0.2
MIN_RUN_SECONDS = 0.5
HOLD_SECONDS = 1.0  # how far a decision reaches into undecided frames around it
# A point outside every face's box names the nearest face if it is within this share of that
# face's size (the larger side of its landmarks' box) of the box: a click on the hair or the
# chin just below the landmarks still means that face.
NEAR_FACE = 0.5
# A face is recognised as the pointed person only if its shape is at most this share as far
# from theirs as any face known to be someone else (`_same_person`).
CLEAR_RATIO = 0.5


@dataclass
class FaceChoice:
    """The face for each source frame, and what a user should know about how it was chosen."""

    faces: list[FaceTrack | None]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceSpeech:
    """The source video's own sound, per video frame."""

    loudness: NDArray[Any]  # 0..1
    speech: NDArray[Any]  # share of the frame that is speech
    samples: NDArray[Any] | None = None  # the sound itself, mono 16 kHz, time 0 = first frame


@dataclass(frozen=True)
class Pointed:
    """A `SpeakerPoint` with what it needs of the video: the picture's size (pixels, display
    orientation, as the landmarks are) and a way to look at source frames (for `identity`)."""

    point: SpeakerPoint
    width: int
    height: int
    pictures: identity.Pictures


def choose_faces(
    tracks: list[FaceTrack],
    frames: int,
    fps: float,
    active_speaker_detection: bool,
    source_speech: Callable[[], SourceSpeech | None],
    shots: list[int],
    pointed: Pointed | None = None,
) -> FaceChoice:
    """The face to re-animate in each source frame (None where there is no face).

    `shots` lists the first frame of every shot after the first (hard cuts);
    `source_speech` gives the source's own sound (None if it has none), and is only called
    when two faces ever share the screen. `pointed`, if given, decides alone (`pointed_faces`).
    """
    if pointed is not None:
        return pointed_faces(tracks, frames, pointed)
    largest = largest_faces(tracks, frames)
    if not active_speaker_detection:
        return FaceChoice(largest, ["active speaker detection disabled: used the largest face"])
    if not _faces_share_the_screen(tracks):
        return FaceChoice(largest)  # one face at a time: nothing to decide
    sound = source_speech()
    if sound is None:
        return FaceChoice(largest, ["source video has no audio: used the largest face"])
    choice = FaceChoice(list(largest))
    embedded = None if sound.samples is None else sync.embed_sound(sound.samples, fps, frames)
    bounds = [0, *shots, frames]
    for start, stop in itertools.pairwise(bounds):
        _detect_in_shot(tracks, start, stop, fps, sound, embedded, largest, choice)
    return choice


def pointed_faces(tracks: list[FaceTrack], frames: int, pointed: Pointed) -> FaceChoice:
    """The pointed-at person in every frame they are recognised in, None elsewhere.

    Raises `SpeakerPointError` for a point outside the picture or the video, or with no face
    at or near it."""
    point = pointed.point
    problem = point.problem()
    if problem is not None:
        raise SpeakerPointError(problem)
    if point.frame >= frames:
        raise SpeakerPointError(
            f"speaker frame {point.frame} is beyond the video's last frame ({frames - 1})"
        )
    chosen = _track_at(tracks, point, pointed.width, pointed.height)
    person = [chosen, *_same_person(chosen, tracks, pointed.pictures)]
    faces: list[FaceTrack | None] = [None] * frames
    for track in person:
        faces[track.start : track.end] = [track] * len(track.points)
    choice = FaceChoice(faces)
    if len(person) > 1:
        spans = _spans(np.array([f is not None and f is not chosen for f in faces]), 0)
        choice.notes.append(
            f"frames {_describe(spans)}: the pointed speaker, recognised by their likeness"
        )
    others = np.zeros(frames, dtype=bool)
    for track in tracks:
        others[track.start : track.end] |= track.found
    missing = others & np.array([f is None for f in faces])
    if missing.any():
        choice.notes.append(
            f"frames {_describe(_spans(missing, 0))}: the pointed speaker was not recognised "
            "among the faces there: no face re-animated"
        )
    return choice


def _track_at(tracks: list[FaceTrack], point: SpeakerPoint, width: int, height: int) -> FaceTrack:
    """The track whose face holds the point in its frame, or is nearest to it (within
    `NEAR_FACE`); of two boxes holding it, the one whose centre is nearer."""
    x, y = point.x * width, point.y * height
    best: tuple[float, float, FaceTrack] | None = None
    for track in tracks:
        points = track.at(point.frame)
        if points is None:
            continue
        box = box_of(points)
        outside = _distance_outside(box, x, y) / max(box.x1 - box.x0, box.y1 - box.y0, 1.0)
        centre = float(np.hypot((box.x0 + box.x1) / 2 - x, (box.y0 + box.y1) / 2 - y))
        if outside <= NEAR_FACE and (best is None or (outside, centre) < best[:2]):
            best = (outside, centre, track)
    if best is None:
        seen = sum(t.at(point.frame) is not None for t in tracks)
        raise SpeakerPointError(
            f"no face at the speaker point (x {point.x:g}, y {point.y:g}) in frame "
            f"{point.frame}: {seen} face{'s' if seen != 1 else ''} in that frame, none there"
        )
    return best[2]


def _distance_outside(box: FaceBox, x: float, y: float) -> float:
    """Pixels from (x, y) to the box, 0 inside it."""
    dx = max(box.x0 - x, 0.0, x - box.x1)
    dy = max(box.y0 - y, 0.0, y - box.y1)
    return float(np.hypot(dx, dy))


def _overlap(a: FaceTrack, b: FaceTrack) -> bool:
    return a.start < b.end and b.start < a.end


def _same_person(
    chosen: FaceTrack, tracks: list[FaceTrack], pictures: identity.Pictures
) -> list[FaceTrack]:
    """The tracks, other than `chosen`, that are clearly the same person.

    A track is when it matches the chosen track's likeness (`identity`), is not on screen at
    the same time (one person is one face at a time), and is clearly nearer to it than the
    faces known to be someone else: those on screen with the chosen face, and those on screen
    with the track itself (its shape distance at most `CLEAR_RATIO` of theirs). Nearest first,
    and none on screen with one taken before it."""
    candidates = [t for t in tracks if t is not chosen and not _overlap(t, chosen)]
    if not candidates:
        return []
    seen = pictures(sorted({f for t in tracks for f in identity.colour_frames(t)}))
    like = {id(t): identity.likeness(t, seen) for t in tracks}
    target = like[id(chosen)]
    shape = {id(t): like[id(t)].distances(target)[0] for t in tracks}
    beside_chosen = [t for t in tracks if t is not chosen and _overlap(t, chosen)]
    taken: list[FaceTrack] = []
    for track in sorted(candidates, key=lambda t: shape[id(t)]):
        if not like[id(track)].matches(target):
            continue
        others = beside_chosen + [t for t in tracks if t is not track and _overlap(t, track)]
        if any(shape[id(track)] > CLEAR_RATIO * shape[id(other)] for other in others):
            continue  # someone else looks nearly as alike: not clear
        if any(_overlap(track, other) for other in taken):
            continue
        taken.append(track)
    return taken


def _faces_share_the_screen(tracks: list[FaceTrack]) -> bool:
    return any(a.start < b.end and b.start < a.end for a, b in itertools.combinations(tracks, 2))


def _detect_in_shot(
    tracks: list[FaceTrack],
    start: int,
    stop: int,
    fps: float,
    source: SourceSpeech,
    sound: NDArray[Any] | None,
    largest: list[FaceTrack | None],
    choice: FaceChoice,
) -> None:
    present = [t for t in tracks if t.start < stop and t.end > start]
    if len(present) < 2:
        return  # one face (or none): it is the only one to animate
    in_sync: NDArray[Any] | None = None
    if sound is not None:
        window_seconds, floor, margin = SYNC_WINDOW_SECONDS, MIN_SYNC_CONFIDENCE, MIN_SYNC_MARGIN
        score, in_sync = _learned_scorer(present, start, stop, fps, sound)
    else:
        window_seconds, floor, margin = WINDOW_SECONDS, MIN_CORRELATION, MIN_MARGIN
        score = _loudness_scorer(present, start, stop, source.loudness)
    window = max(8, round(window_seconds * fps))
    hop = max(1, round(HOP_SECONDS * fps))
    votes = np.zeros((len(present), stop - start))
    decided = np.zeros(stop - start, dtype=bool)
    undecided_reasons: set[str] = set()
    for w0 in _window_starts(start, stop, window, hop):
        w1 = min(w0 + window, stop)
        speech_share = float(source.speech[w0:w1].mean()) if w1 > w0 else 0.0
        if speech_share < MIN_SPEECH_SHARE:
            undecided_reasons.add("no speech in the source audio")
            continue
        scores = [score(k, w0 - start, w1 - start) for k in range(len(present))]
        order = np.argsort(scores)[::-1]
        best, second = scores[order[0]], scores[order[1]]
        if best < floor or best - second < margin:
            undecided_reasons.add("no face clearly in sync with the source audio")
            continue
        # A window speaks most for the frames at its centre, and each decided window casts
        # one vote: spread evenly, a window holding more of one speaker's turn than of the
        # next one's would hand that speaker every frame it covers, and a change of speaker
        # would be followed a window late (and more so after a speaker whose lips agree with
        # the sound more clearly, had the votes been weighted by that agreement).
        votes[order[0], w0 - start : w1 - start] += np.hanning(w1 - w0 + 2)[1:-1]
        decided[w0 - start : w1 - start] = True
    winner = np.argmax(votes, axis=0)
    winner, decided = _hold_decisions(winner, decided, max(1, round(HOLD_SECONDS * fps)))
    picked: list[FaceTrack | None] = [
        present[winner[i]] if decided[i] and present[winner[i]].at(start + i) is not None
        else largest[start + i]
        for i in range(stop - start)
    ]  # fmt: skip
    picked = _absorb_short_runs(picked, max(1, round(MIN_RUN_SECONDS * fps)))
    if in_sync is not None:
        picked = _place_changes(picked, present, start, in_sync, window // 2)
    choice.faces[start:stop] = picked
    fallback = ~decided
    if fallback.any():
        spans = _spans(fallback, start)
        reasons = "; ".join(sorted(undecided_reasons)) or "too little to go on"
        choice.notes.append(f"frames {_describe(spans)}: {reasons}: used the largest face")


def _window_starts(start: int, stop: int, window: int, hop: int) -> list[int]:
    """Window starts `hop` apart over [start, stop), the last window ending at `stop`."""
    starts = list(range(start, max(start + 1, stop - window + 1), hop))
    if starts[-1] + window < stop:
        starts.append(stop - window)
    return starts


def _hold_decisions(
    winner: NDArray[Any], decided: NDArray[Any], reach: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Undecided frames within `reach` of a decision take the nearest one: a pause, a breath or
    a weak window between two of the same speaker's sentences does not hand the role away."""
    if not decided.any():
        return winner, decided
    index = np.arange(len(decided))
    known = np.flatnonzero(decided)
    after = np.searchsorted(known, index).clip(0, len(known) - 1)
    before = (after - 1).clip(0, len(known) - 1)
    nearer = np.where(
        np.abs(known[before] - index) <= np.abs(known[after] - index), known[before], known[after]
    )
    reachable = np.abs(nearer - index) <= reach
    return np.where(decided, winner, winner[nearer]), decided | reachable


Scorer = Callable[[int, int, int], float]  # (face, window start, stop in the shot) -> score


def _place_changes(
    picked: list[FaceTrack | None],
    present: list[FaceTrack],
    start: int,
    distance: NDArray[Any],
    reach: int,
) -> list[FaceTrack | None]:
    """Each change from one face to another moved to the frame where the two faces' per-frame
    `distance` (faces, frames of the shot; lower is more in sync) best divides into the first
    face's turn and the second's, within `reach` frames and short of the neighbouring changes.

    Windows say who speaks, but seconds at a time: a change of speaker is found within half
    a window of where it is. Frame by frame the scorer is too noisy to decide who speaks, yet
    summed either side of a candidate frame it says where one turn ends and the next begins.
    A frame is only handed to a face that is on screen in it."""
    out = list(picked)
    changes = [
        i
        for i in range(1, len(out))
        if out[i - 1] is not None and out[i] is not None and out[i - 1] is not out[i]
    ]
    for k, change in enumerate(changes):
        before, after = out[change - 1], out[change]
        assert before is not None and after is not None
        lo = max(change - reach, changes[k - 1] if k else 0, 1)
        hi = min(change + reach, changes[k + 1] if k + 1 < len(changes) else len(out))
        worse = distance[present.index(before), lo:hi] - distance[present.index(after), lo:hi]
        total = np.concatenate([[0.0], np.cumsum(np.nan_to_num(worse))])
        # Split at lo + j: frames lo..lo+j-1 to `before`, the rest to `after`; the best split
        # leaves the most agreement on each side (the sum of `worse` after it, minus before).
        split = lo + int(np.argmax(total[-1] - 2 * total[1:-1])) + 1 if hi - lo > 1 else change
        for f in range(min(split, change), max(split, change)):
            face = before if f < split else after
            if face.at(start + f) is not None:
                out[f] = face
    return out


def _learned_scorer(
    present: list[FaceTrack], start: int, stop: int, fps: float, sound: NDArray[Any]
) -> tuple[Scorer, NDArray[Any]]:
    """Each face's agreement with the sound in a window: the median distance over all offsets
    minus the distance at the shot's offset (0 when the face is missing from much of it); and
    each face's distance at that offset per frame of the shot (NaN where it is missing).

    The offset between sound and picture belongs to the recording, not to a face, so it is
    measured once per shot, within ±SYNC_LAG frames, on the face whose lips agree with the
    sound most clearly over the whole shot, and every face is then judged at that offset.
    Letting each face pick its own best offset in every window would let a face that is not
    speaking find a chance match somewhere among the offsets, window after window.
    """
    table = []
    for track in present:
        lo, hi = max(start, track.start), min(stop, track.end)
        lips = sync.embed_lips(track.points[lo - track.start : hi - track.start], fps)
        rows = np.full((stop - start, 2 * sync.MAX_OFFSET + 1), np.nan)
        rows[lo - start : hi - start] = sync.distances(lips, sound, sync.MAX_OFFSET, first=lo)
        table.append(rows)
    near = slice(sync.MAX_OFFSET - SYNC_LAG, sync.MAX_OFFSET + SYNC_LAG + 1)
    best_dip, column = -np.inf, sync.MAX_OFFSET
    for rows in table:
        curve = sync.sync_curve(rows).distances
        if np.isnan(curve[near]).all():
            continue
        dip = float(np.nanmedian(curve) - np.nanmin(curve[near]))
        if dip > best_dip:
            best_dip, column = dip, near.start + int(np.nanargmin(curve[near]))

    def score(face: int, w0: int, w1: int) -> float:
        block = table[face][w0:w1]
        if np.isnan(block[:, column]).mean() > MAX_MISSING:
            return 0.0
        curve = sync.sync_curve(block).distances
        if np.isnan(curve[column]):
            return 0.0
        return float(np.nanmedian(curve) - curve[column])

    return score, np.array([rows[:, column] for rows in table])


def _loudness_scorer(
    present: list[FaceTrack], start: int, stop: int, loudness: NDArray[Any]
) -> Scorer:
    openings = [_openings(t, start, stop) for t in present]

    def score(face: int, w0: int, w1: int) -> float:
        return _sync(openings[face][w0:w1], loudness[start + w0 : start + w1])

    return score


def _openings(track: FaceTrack, start: int, stop: int) -> NDArray[Any]:
    out = np.full(stop - start, np.nan)
    for f in range(max(start, track.start), min(stop, track.end)):
        points = track.at(f)
        if points is not None:
            out[f - start] = inner_gap(points)
    return out


def _sync(opening: NDArray[Any], loudness: NDArray[Any]) -> float:
    """Best Pearson r of opening against loudness over lags of ±MAX_LAG frames; 0 when the
    face is missing for much of the window or its mouth does not move."""
    if np.isnan(opening).mean() > MAX_MISSING:
        return 0.0
    best = 0.0
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        a = opening[max(lag, 0) : len(opening) + min(lag, 0)]
        b = loudness[max(-lag, 0) : len(loudness) + min(-lag, 0)]
        good = ~np.isnan(a)
        if good.sum() < 6 or np.std(a[good]) < 1e-3 or np.std(b[good]) < 1e-6:
            continue
        best = max(best, float(np.corrcoef(a[good], b[good])[0, 1]))
    return best


def _absorb_short_runs(picked: list[FaceTrack | None], min_run: int) -> list[FaceTrack | None]:
    """Give runs shorter than `min_run` to the face before them, if it is still on screen."""
    out = list(picked)
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and out[j] is out[i]:
            j += 1
        if i > 0 and j - i < min_run and out[i - 1] is not None:
            previous = out[i - 1]
            if all(previous.at(f) is not None for f in range(i, j)):  # type: ignore[union-attr]
                out[i:j] = [previous] * (j - i)
        i = j
    return out


def _spans(mask: NDArray[Any], offset: int) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [
        (int(a) + offset, int(b) + offset - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def _describe(spans: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def largest_faces(tracks: list[FaceTrack], frames: int) -> list[FaceTrack | None]:
    chosen: list[FaceTrack | None] = [None] * frames
    current: FaceTrack | None = None
    challenger: FaceTrack | None = None
    streak = 0
    for f in range(frames):
        present = [(box_of(p).area, t) for t in tracks if (p := t.at(f)) is not None]
        if not present:
            current, challenger, streak = None, None, 0
            continue
        area_of = {id(t): a for a, t in present}
        largest_area, largest = max(present, key=lambda at: at[0])
        if current is None or id(current) not in area_of:
            current, challenger, streak = largest, None, 0
        elif largest is not current and largest_area > SWITCH_RATIO * area_of[id(current)]:
            streak = streak + 1 if challenger is largest else 1
            challenger = largest
            if streak >= SWITCH_FRAMES:
                current, challenger, streak = largest, None, 0
        else:
            challenger, streak = None, 0
        chosen[f] = current
    return chosen
