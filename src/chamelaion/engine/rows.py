"""Per-frame arrays kept on disk: what grows with a video's length never lives in memory whole.

A face's landmarks are 478 points a frame (3.8 KB as float32): an hour at 30 fps is 400 MB per
face, and the analysis used to hold several copies of them. A `RowFile` keeps such rows in a file
(raw float32, one fixed-shape row per frame) and hands back the rows asked for, read with
`pread` into a fresh array: never a memory map, whose touched pages would count as the process's
own until the mapping went away. Every pass over a whole track goes through `chunks`, so the
memory a pass needs is one chunk, whatever the length. Reading a row back costs microseconds
(the file sits in the page cache), against milliseconds to render the frame it belongs to.

A row file lives in a job's work directory (the smoothed tracks a render plan refers to, found
by every process rendering a segment) or in a temporary directory that goes away with the last
row file referring to it (`RowFolder.temporary`).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROW_DTYPE = np.dtype(np.float32)
CHUNK_ROWS = 512
"""Rows per chunk of a pass over a whole file: 2 MB of landmarks."""


class RowFolder:
    """Where row files are written: a directory, kept alive by every row file made in it."""

    def __init__(self, path: str | Path, owner: Any = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._owner = owner  # a TemporaryDirectory: removed once nothing refers to it
        self._numbers = itertools.count(1)  # next() is atomic: the scan's halves share a folder

    @classmethod
    def temporary(cls) -> RowFolder:
        """A fresh temporary directory, removed once no row file in it is referenced any more
        (analyses run outside a job: benchmarks, the scorer, tests)."""
        owner = tempfile.TemporaryDirectory(prefix="chamelaion-rows-")
        return cls(owner.name, owner)

    def writer(self, name: str, shape: tuple[int, ...]) -> RowWriter:
        """A new row file named `name` (made unique within the folder)."""
        return RowWriter(self.path / f"{name}.{next(self._numbers)}.rows", shape, self._owner)


class RowWriter:
    """Appends rows to a new file; `close` gives the `RowFile` to read them back."""

    def __init__(self, path: Path, shape: tuple[int, ...], owner: Any = None) -> None:
        self.path = path
        self.shape = shape
        self.count = 0
        self._owner = owner
        self._handle = open(path, "wb")  # noqa: SIM115 (closed by `close`)

    def append(self, rows: NDArray[Any]) -> None:
        """Add `rows`: one row (of `shape`) or several (n, *shape)."""
        block = np.ascontiguousarray(rows, ROW_DTYPE)
        if block.shape == self.shape:
            block = block[None]
        if block.shape[1:] != self.shape:
            raise ValueError(f"rows of shape {block.shape[1:]}, not {self.shape}")
        self._handle.write(block.tobytes())
        self.count += len(block)

    def append_missing(self, count: int) -> None:
        """Add `count` rows of NaN (frames where the face was not found)."""
        if count > 0:
            self.append(np.full((count, *self.shape), np.nan, ROW_DTYPE))

    def close(self) -> RowFile:
        self._handle.close()
        return RowFile(self.path, self.shape, self.count, self._owner)


class RowFile:
    """Rows of a fixed shape in a file, read on demand; indexed like the (count, *shape) array
    it stands for, by an int, a slice or an array of row indices (then any further axes), and
    each read returns a new array."""

    def __init__(self, path: Path, shape: tuple[int, ...], count: int, owner: Any = None) -> None:
        self.path = path
        self.shape = shape
        self.count = count
        self._owner = owner
        self._row_bytes = int(np.prod(shape)) * ROW_DTYPE.itemsize

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:
        # A render plan is pickled with its row files: their place, never a temporary owner
        # (a plan's row files are in its work directory, which outlives the plan).
        return {"path": self.path, "shape": self.shape, "count": self.count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], tuple(state["shape"]), state["count"])  # type: ignore[misc]

    def rows(self, start: int, stop: int) -> NDArray[Any]:
        """Rows [start, stop) (clipped to the file) as one array."""
        start, stop = max(0, start), min(self.count, stop)
        if stop <= start:
            return np.zeros((0, *self.shape), ROW_DTYPE)
        size = (stop - start) * self._row_bytes
        with open(self.path, "rb") as handle:
            data = os.pread(handle.fileno(), size, start * self._row_bytes)
        if len(data) != size:
            raise OSError(f"{self.path.name} is shorter than its {self.count} rows")
        return np.frombuffer(bytearray(data), ROW_DTYPE).reshape(stop - start, *self.shape)

    def take(self, indices: NDArray[Any]) -> NDArray[Any]:
        """The rows at `indices` (ints, or a boolean mask over all rows), in their order."""
        index = np.asarray(indices)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = np.where(index < 0, index + self.count, index).astype(np.int64)
        out = np.empty((len(index), *self.shape), ROW_DTYPE)
        if not len(index):
            return out
        if index.min() < 0 or index.max() >= self.count:
            raise IndexError(f"row index out of range for {self.count} rows")
        # Read in runs of neighbouring rows: one read per stretch, not per row.
        order = np.argsort(index, kind="stable")
        sorted_index = index[order]
        breaks = np.flatnonzero(np.diff(sorted_index) > 1) + 1
        for run in np.split(np.arange(len(index)), breaks):
            first, last = int(sorted_index[run[0]]), int(sorted_index[run[-1]])
            block = self.rows(first, last + 1)
            out[order[run]] = block[sorted_index[run] - first]
        return out

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, NDArray[Any]]]:
        """Rows [start, stop) a chunk at a time: (first row's index, rows)."""
        stop = self.count if stop is None else min(stop, self.count)
        for first in range(start, stop, CHUNK_ROWS):
            yield first, self.rows(first, min(first + CHUNK_ROWS, stop))

    def __getitem__(self, key: Any) -> NDArray[Any]:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, (int, np.integer)):
            i = int(first) + (self.count if first < 0 else 0)
            if not 0 <= i < self.count:
                raise IndexError(f"row {first} out of range for {self.count} rows")
            selected: NDArray[Any] = self.rows(i, i + 1)[0]
        elif isinstance(first, slice):
            start, stop, step = first.indices(self.count)
            if step == 1:
                selected = self.rows(start, stop)
            else:
                selected = self.take(np.arange(start, stop, step))
        else:
            selected = self.take(np.asarray(first))
        if rest:
            # The row axis was taken above (kept unless an int took it away).
            kept: tuple[Any, ...] = (
                rest if isinstance(first, (int, np.integer)) else (slice(None), *rest)
            )
            picked: NDArray[Any] = selected[kept]
            return picked
        return selected


def concatenate(parts: list[RowFile], folder: RowFolder, name: str) -> RowFile:
    """One row file holding the rows of `parts` one after another, copied a chunk at a time."""
    writer = folder.writer(name, parts[0].shape)
    for part in parts:
        for _, rows in part.chunks():
            writer.append(rows)
    return writer.close()
