"""TensorBoard event files: per-epoch scalars, figures as images, HParams, the projector."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import torch

from replab.io import TMP_SUFFIX, atomic_write_text

# Scalars of an epoch record that are not metrics (the epoch is the step; best is a flag).
NOT_SCALARS = ("epoch", "best")


PROJECTOR_TAG = "test_latents"


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
        metadata, in TensorBoard's layout (``<step>/test_latents/`` and
        ``projector_config.pbtxt``). Written into a hidden temporary folder and moved into
        place, the config last, so a run killed meanwhile leaves no torn projector files."""
        from google.protobuf import text_format
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
        from torch.utils.tensorboard._embedding import (
            get_embedding_info,
            make_mat,
            make_sprite,
            make_tsv,
        )

        logdir = Path(self.writer.get_logdir())
        subdir = f"{step:05d}/{PROJECTOR_TAG}"
        tmp = logdir / f".{step:05d}-{PROJECTOR_TAG}{TMP_SUFFIX}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        sprite = images.float() / 255
        make_tsv(labels, str(tmp))
        make_sprite(sprite, str(tmp))
        make_mat(latents.detach().float().cpu().numpy(), str(tmp))
        final = logdir / subdir
        shutil.rmtree(final, ignore_errors=True)  # the same step again: a resumed run's finish
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        config = ProjectorConfig()
        config.embeddings.extend([get_embedding_info(labels, sprite, subdir, step, PROJECTOR_TAG)])
        atomic_write_text(logdir / "projector_config.pbtxt", text_format.MessageToString(config))

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
