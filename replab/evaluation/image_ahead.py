"""The image space's analysis, computed by a helper process while the encoder trains.

The image space (the test pixels' t-SNE map and separability scores) depends only on the test
set, its sample, the seed and the analysis settings, never on the encoder, so it can be
computed while the encoder trains. On a cold cache it was 6 of the 15.3 s an A1 run spent
after its 74 s of training (2 cores, 2026-12-02).

The helper takes one CPU from the run for its few seconds: it is registered in the live
registry as using one thread (``replab.training.threads``), so the run's next recount, at the
end of the epoch that started it, gives training the other CPUs, and the recount after the
helper ends gives them back. On two cores that trades a few epochs of 1-thread training (a
step 4.9 ms instead of 3.2 ms) for a map that one thread computes more efficiently than two.
A nice-19 helper beside a 2-thread trainer instead got 6% of a core and did not finish in 86 s.

The helper calls the analysis's own ``image_space``, which always computes with one thread, so
it stores exactly what the analysis would compute; the run waits for an unfinished helper at
the end of training rather than compute the same thing again. The helper is started only when
the run has a CPU to lend (two threads or more, not fixed by ``--threads``) and training has
``MIN_TRAINING_LEFT_S`` left; otherwise the analysis computes the image space as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from replab.evaluation import space_cache
from replab.evaluation.analysis import IMAGE_SPACE_THREADS, image_space, image_space_key
from replab.spec import AnalysisSpec
from replab.training import threads

# The helper is started only when training has at least this long left (the first epoch's
# time times the epochs left): it needs about 10 s of a CPU (A1's MNIST test set), and the run
# waits for it after training.
MIN_TRAINING_LEFT_S = 30.0
# A helper still running this long after training is given up (stopped) and the analysis
# computes the image space itself
WAIT_LIMIT_S = 600.0


class ImageSpaceAhead:
    """An epoch hook: after the first epoch, start the helper if the image space is not cached
    and training has ``MIN_TRAINING_LEFT_S`` left. ``finish`` before the analysis, ``stop``
    on the way out whatever happened (both are safe to repeat)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        spec: AnalysisSpec,
        seed: int,
        cache: Path,
        max_epochs: int,
    ) -> None:
        self.images, self.labels = images, labels
        self.spec, self.seed, self.cache = spec, seed, Path(cache)
        self.max_epochs = max_epochs
        self.process: subprocess.Popen | None = None
        self.inputs: Path | None = None
        self.errors: Path | None = None
        # the helper's wall time, start to end as seen at epoch boundaries (None: not ended)
        self.seconds: float | None = None
        self._started = 0.0
        self._decided = False

    def __call__(self, trainer, record: dict) -> None:
        self._reap()
        if self._decided:
            return
        self._decided = True
        left = (self.max_epochs - int(record["epoch"])) * float(record.get("seconds", 0.0))
        spare = torch.get_num_threads() >= 2 and threads.fixed_threads() is None
        if spare and left >= MIN_TRAINING_LEFT_S and self._needed():
            self._start()

    def _needed(self) -> bool:
        _, key = image_space_key(self.images, self.labels, self.spec, self.seed)
        return space_cache.load(self.cache, key) is None

    def _start(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        job = {
            "spec": self.spec.model_dump(mode="json"),
            "seed": self.seed,
            "cache": str(self.cache),
        }
        handle, name = tempfile.mkstemp(prefix="image-ahead-", suffix=".npz", dir=self.cache)
        with os.fdopen(handle, "wb") as file:
            np.savez(
                file,
                images=self.images.cpu().numpy(),
                labels=self.labels.cpu().numpy(),
                job=np.array(json.dumps(job)),
            )
        self.inputs = Path(name)
        # the helper imports the replab this process runs, wherever it was imported from
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self.errors = self.inputs.with_suffix(".log")
        with open(self.errors, "wb") as errors:  # the helper's traceback, should it fail
            self.process = subprocess.Popen(
                [sys.executable, "-m", "replab.evaluation.image_ahead", str(self.inputs)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env={**os.environ, "PYTHONPATH": path},
            )
        self._started = time.perf_counter()
        threads.register_helper(self.process.pid, IMAGE_SPACE_THREADS)

    def _reap(self) -> None:
        """An ended helper is reaped (the registry stops counting it) and its time noted."""
        if self.process is not None and self.process.poll() is not None and self.seconds is None:
            self.seconds = time.perf_counter() - self._started

    def finish(self) -> str | None:
        """After training: wait for the helper, and say what became of it (None when none
        was started). A failed or given-up helper leaves the image space to the analysis."""
        if self.process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=WAIT_LIMIT_S)
        self._reap()
        why = self._last_error()
        code = self.stop()
        if code == 0:
            return f"image space: computed during training by a helper ({self.seconds:.0f} s)"
        return f"image space: its helper failed (exit {code}{why}); the analysis computes it"

    def _last_error(self) -> str:
        if self.errors is None:
            return ""
        try:
            lines = self.errors.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1][:300]}" if lines else ""

    def stop(self) -> int | None:
        """Stop the helper if it still runs and remove its input file; its exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            code = self.process.wait()
            self.process = None
        for file in (self.inputs, self.errors):
            if file is not None:
                file.unlink(missing_ok=True)
        self.inputs = self.errors = None
        return code


def main(argv: list[str]) -> int:
    """The helper: compute the image space described by the input file into the cache."""
    with np.load(argv[0], allow_pickle=False) as data:
        images = torch.from_numpy(data["images"])
        labels = torch.from_numpy(data["labels"])
        job = json.loads(str(data["job"]))
    Path(argv[0]).unlink(missing_ok=True)  # read: nothing is left behind if the run is killed
    spec = AnalysisSpec.model_validate(job["spec"])
    image_space(images, labels, spec, int(job["seed"]), Path(job["cache"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
