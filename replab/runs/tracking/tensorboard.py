"""TensorBoard event files: per-epoch scalars, figures as images, HParams, the projector."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

# Scalars of an epoch record that are not metrics (the epoch is the step; best is a flag).
NOT_SCALARS = ("epoch", "best")


def scalar_tag(key: str) -> str:
    """``train_loss`` -> ``train/loss``: TensorBoard groups the cards by the part before '/'."""
    split, sep, metric = key.partition("_")
    if sep and split in ("train", "val", "test"):
        return f"{split}/{metric}"
    return f"time/{key}" if key == "seconds" else key


class EventLog:
    """One run's (or one study's) event files in ``folder``.

    ``purge_from``: a resumed run's first epoch to write again; TensorBoard hides the events
    the interrupted process had written from that step on, so no epoch shows twice."""

    def __init__(self, folder: Path, purge_from: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # flush_secs: events reach the disk while training, not only at the end
        self.writer = SummaryWriter(str(folder), purge_step=purge_from, flush_secs=30)

    @property
    def _file(self):
        """The writer's event file, for summaries SummaryWriter has no method for."""
        assert self.writer.file_writer is not None  # set by SummaryWriter.__init__
        return self.writer.file_writer

    def epoch(self, record: dict, lrs: list[float]) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key not in NOT_SCALARS and _is_number(value):
                self.writer.add_scalar(scalar_tag(key), float(value), step)
        for i, lr in enumerate(lrs):
            self.writer.add_scalar("lr" if i == 0 else f"lr/group{i}", lr, step)
        self.writer.flush()

    def final(self, metrics: dict, hparams: dict, step: int) -> None:
        """The run's final metrics as ``final/<metric>``, and its settings in the HParams tab
        against those metrics."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        final = {f"final/{k}": float(v) for k, v in metrics.items() if _is_number(v)}
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, step)
        for summary in hparams_summary(hparams, final):
            self._file.add_summary(summary)

    def images(self, figures: dict[str, bytes], step: int, prefix: str = "figures") -> None:
        """Each PNG figure as it is (no decoding and re-encoding)."""
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        for name, png in figures.items():
            width, height = Image.open(io.BytesIO(png)).size
            image = Summary.Image(
                height=height, width=width, colorspace=4, encoded_image_string=png
            )
            tag = f"{prefix}/{name}"
            self._file.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def projector(
        self, latents: torch.Tensor, images: torch.Tensor, labels: list[str], step: int
    ) -> None:
        """Latents for the embedding projector: a sprite of the input images, labels as
        metadata (TensorBoard writes projector_config.pbtxt beside the events)."""
        self.writer.add_embedding(
            latents.detach().float().cpu(),
            metadata=labels,
            label_img=images.float() / 255,
            global_step=step,
            tag="test_latents",
        )

    def text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text)

    def close(self) -> None:
        self.writer.close()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def hparam_values(flat: dict) -> dict:
    """HParams take numbers, booleans and strings: everything else as its JSON text."""
    return {
        k: v if isinstance(v, bool | int | float | str) else json.dumps(v) for k, v in flat.items()
    }
