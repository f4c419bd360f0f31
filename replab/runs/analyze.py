"""``replab analyze``: the whole latent-space analysis of an encoder trained anywhere.

The encoder is any ``torch.nn.Module`` mapping a batch of images (N x C x H x W, pixels
normalised as ``data.normalize`` says; [0, 1] by default) to vectors: an in-memory module,
a TorchScript file, or the encoder of a finished replab run. Nothing is trained except the
probes: a linear and an MLP classifier on the frozen latents, then kNN accuracy,
separability, PCA, t-SNE with hover images and, with a decoder, reconstructions,
interpolation, traversal and samples. The result is an ordinary run folder with
``report.html``.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import cast

import torch
from torch import nn

from replab.errors import ConfigError, ReplabError
from replab.evaluation import train_probe
from replab.io import Log
from replab.recipes import load_spec
from replab.reporting import figures
from replab.runs import rundir
from replab.runs.evaluate import (
    EvalContext,
    Outputs,
    analysis,
    label_efficiency,
    latents,
    per_class,
    reconstruction,
    record_probe,
    run_summary,
    write_run,
)
from replab.runs.lifecycle import RunResult
from replab.runs.prepare import held, load_data
from replab.runs.weights import load_run_task
from replab.spec import Component, ExperimentSpec
from replab.tasks.frozen import Frozen
from replab.training import resolve_device, seed_everything

# The probes every analysis trains: the linear one says what a hyperplane separates, the MLP
# what a small non-linear readout can find (kNN comes from the analysis itself). Named as a
# run names the same probes (docs/metrics.md): probe.* is the MLP (a run's default probe.head),
# linear_probe.* the linear one; folders written before that (probe_mlp, probe_linear) are
# read under these names (rundir.read_summary).
PROBES = {
    "linear_probe": (Component(name="linear_head"), "linear probe on frozen latents"),
    "probe": (Component(name="mlp_head", hidden=[64]), "MLP probe on frozen latents"),
}


def analysis_spec(
    name: str, dataset: str, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentSpec:
    """The run folder's config: the dataset and the probe / analysis settings. Its model and
    objective only record what was analysed; no recipe trains them."""
    base = {
        "name": f"analyze-{rundir.safe_name(name)}"[:120],
        "description": f"latent-space analysis of {name} (replab analyze; nothing trained)",
        "task": "analyze",
        "data": {"dataset": dataset},
        "model": {"encoder": {"name": f"given:{name}"}},
        "objective": {"name": "none"},
    }
    return load_spec(None, list(overrides), base=base)


def load_encoder(
    source: str | Path, trust_code: bool = False
) -> tuple[nn.Module, nn.Module | None, str]:
    """(encoder, decoder or None, a name) from a finished run folder, a torch.export program
    (.pt2) or a TorchScript file.

    The folder or file may come from someone else, so it is read as data: a run folder whose
    config names code by import path, and a .pt2 holding anything beyond a graph of torch
    operators and raw tensors (pickled objects, Python guard code, compiled libraries), are
    refused unless ``trust_code``.
    """
    path = Path(source)
    if path.is_dir():
        task, _spec = load_run_task(path, trust_code=trust_code)
        decoder = task.model.decoder if task.reconstructs else None
        return task.encoder, cast(nn.Module | None, decoder), path.name
    if not path.is_file():
        raise ReplabError(
            f"{str(source)!r} is neither a run folder nor a file",
            "pass a finished run folder, a torch.export program (.pt2) or a TorchScript file",
        )
    module = _load_program(path, trust_code)
    return module, None, path.stem


def _load_program(path: Path, trust_code: bool = False) -> nn.Module:
    """A saved program: torch.export's ``.pt2`` (torch.export.save; its batch dimension must be
    dynamic) or TorchScript (torch.jit.save); replab loads the file because the user named it.

    TorchScript is read by torch's C++ loader: its code is TorchScript, compiled to calls of
    torch operators, and its tensors come through TorchScript's own unpickler, which makes no
    Python objects; code calling an operator that touches files is refused
    (``programs.check_torchscript``). ``torch.export.load`` instead unpickles some payloads,
    evaluates its shape expressions with sympy and ``exec``s guard code, so a .pt2 is checked
    first (``programs.check_pt2``): only a graph of torch operators over raw tensors is opened
    without ``trust_code``."""
    from replab.runs import programs

    loaders = [("torch.export", _load_exported), ("TorchScript", _load_script)]
    if not trust_code and programs.is_pt2(path):
        programs.check_pt2(path)
        loaders = loaders[:1]
    elif not trust_code:
        if programs.is_torchscript(path):
            programs.check_torchscript(path)
        loaders = loaders[1:]  # torch.export's older formats are pickles
    errors = []
    for kind, load in loaders:
        try:
            return load(path)
        except Exception as err:  # not that format: try the next one
            errors.append(f"{kind}: {(str(err).splitlines() or [type(err).__name__])[0][:120]}")
    raise ReplabError(
        f"{str(path)!r} is not a TorchScript file nor a torch.export program ({'; '.join(errors)})",
        "save the encoder with torch.export.save(torch.export.export(encoder, (example,), "
        "dynamic_shapes=...), path) or torch.jit.save(torch.jit.script(encoder), path), or "
        "pass the module itself to replab.analyze in Python",
    )


def _load_exported(path: Path) -> nn.Module:
    # torch.export logs a warning of its own for a file that is not its format; the error
    # replab raises after trying both formats says it once, on one line.
    quiet = logging.getLogger("torch.export")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return _ModeFree(torch.export.load(str(path)).module())
    finally:
        quiet.setLevel(level)


class _ModeFree(nn.Module):
    """An exported program's module refuses train()/eval() (its mode was fixed when exported);
    the evaluation steps switch modes around every pass, so here the switch stops at this
    wrapper."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> _ModeFree:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


def _load_script(path: Path) -> nn.Module:
    with warnings.catch_warnings():  # deprecated in favour of torch.export, still what many have
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


def analyze_encoder(
    encoder: nn.Module,
    spec: ExperimentSpec,
    decoder: nn.Module | None = None,
    runs_dir: Path = Path("runs"),
    log: Log = print,
) -> RunResult:
    """Evaluate ``encoder`` (and ``decoder``) on ``spec``'s data; write and return the run."""
    if not isinstance(encoder, nn.Module):
        raise ConfigError(
            f"the encoder to analyse is a {type(encoder).__name__}, not a torch.nn.Module",
            "pass a module that maps a batch of images to vectors",
        )
    run_dir = rundir.new_run_dir(runs_dir, spec)
    rundir.set_status(run_dir, "running")
    try:
        summary = _evaluate(encoder, decoder, spec, run_dir, log)
    except BaseException as err:
        message = err.message if isinstance(err, ReplabError) else f"{type(err).__name__}: {err}"
        rundir.set_status(run_dir, "failed", error=message)
        raise
    rundir.set_status(run_dir, "finished")
    return RunResult(run_dir, summary)


def _evaluate(
    encoder: nn.Module, decoder: nn.Module | None, spec: ExperimentSpec, run_dir: Path, log: Log
) -> dict:
    t0 = time.perf_counter()
    seed_everything(spec.seed, spec.trainer.deterministic)
    device = resolve_device(spec.data.device)
    splits, normalizer = load_data(spec)
    log(f"data: {splits.train.source}; val {len(splits.val):,}; test {len(splits.test):,}")
    task = Frozen(encoder, decoder)
    task.model.to(device)
    _check_shapes(task, held(splits.test, 2).images[:2], normalizer, device)
    ctx = EvalContext(spec, splits, normalizer, device, task, log)
    out = Outputs(metrics={}, figs={})
    t_data = time.perf_counter() - t0
    if task.reconstructs:
        out.metrics.update(reconstruction(ctx, out.figs))
    z = latents(ctx)
    log(f"latents: {z.test.shape[1]} dimensions")
    classes = splits.train.classes
    for prefix, (head, title) in PROBES.items():
        result = train_probe(z, head, spec.probe.trainer, len(classes), device, spec.seed, classes)
        record_probe(prefix, result, out, title, log)
        out.per_class = out.per_class or per_class(result.test_report)
        out.figs[f"confusion matrix of the {title.split(' on ')[0]} (test)"] = figures.confusion(
            result.test_report.confusion, classes
        )
    label_efficiency(ctx, z, out)
    t_probe = time.perf_counter() - t0 - t_data
    if spec.analysis.enabled:
        analysis(ctx, z, out)
    total = time.perf_counter() - t0
    nothing_trained = {"epochs": 0, "best_epoch": 0, "evaluated_epoch": 0, "stopped_early": False}
    summary = run_summary(
        ctx,
        out,
        training=nothing_trained,
        timings={
            "data": t_data,
            "train": 0.0,
            "probe": t_probe,
            "analysis": total - t_data - t_probe,
            "evaluation": total - t_data,
            "total": total,
        },
    )
    write_run(run_dir, spec, summary, out)
    return summary


def _check_shapes(task: Frozen, images: torch.Tensor, normalizer, device: torch.device) -> None:
    """One small batch through the modules first, so a mismatch is one clear error."""
    x = normalizer(images.to(device))
    try:
        with torch.no_grad():
            z = task.encoder(x)
            if task.reconstructs:
                cast(nn.Module, task.model.decoder)(z)
    except (RuntimeError, TypeError, ValueError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:300]
        raise ConfigError(
            f"the given encoder/decoder cannot take this dataset's images "
            f"{tuple(x.shape)}: {first}",
            "analyse it on data of the shape it was trained on (data.dataset, data.channels, "
            "data.image_size), or pass a module that maps N x C x H x W images to N x d vectors",
        ) from None
