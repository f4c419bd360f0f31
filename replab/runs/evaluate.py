"""The evaluation of an encoder: what a run measures once training ends, and what ``replab
analyze`` measures of an encoder trained anywhere.

Every step reads one ``EvalContext`` (spec, data, device, task, log) and adds to one
``Outputs`` (metrics, figures, per-class scores, the hover map and t-SNE points); ``write_run``
turns them into the run folder's summary, figures and report.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import torch

import replab
from replab.data import ImageSet, Normalizer, Splits, cache_dir
from replab.data.stream import Batches, StreamLoader, StreamSet
from replab.evaluation import Latents, embed, reconstruct, reconstruction_metrics, train_probe
from replab.evaluation.analysis import SPACES, analyse
from replab.evaluation.embed import embed_stream, streamed_reconstruction_metrics
from replab.evaluation.label_efficiency import label_curves
from replab.evaluation.metrics import ClassificationMetrics, classification_report
from replab.evaluation.probe import ProbeResult, finetune_probe, predictions
from replab.evaluation.trail import ReconstructionTrail
from replab.io import Log, atomic_write_bytes, atomic_write_json
from replab.reporting import figures, write_run_report
from replab.reporting.latent_figures import analysis_figures, hover_map, tsne_points
from replab.runs import rundir
from replab.runs.prepare import held, initial_task, loaders
from replab.spec import Component, ExperimentSpec, reference_note, spec_to_yaml
from replab.tasks import Task

ANALYSIS_CACHE = "analysis"  # the space cache's folder in replab's cache


@dataclass
class EvalContext:
    """What every evaluation step of a run reads."""

    spec: ExperimentSpec
    splits: Splits
    normalizer: Normalizer
    device: torch.device
    task: Task
    log: Log


@dataclass
class Outputs:
    """What the evaluation steps add to the summary and the report."""

    metrics: dict[str, float]
    figs: dict[str, bytes]
    per_class: dict | None = None
    hover: dict | None = None
    # t-SNE coordinates, so a study can redraw several runs' maps in one figure
    maps: dict | None = None
    # the label-efficiency curves per draw (summary.json's "label_efficiency")
    curves: dict | None = None


@dataclass
class Evaluated:
    """A trained run's evaluation: its outputs, the latents (TensorBoard's projector shows the
    test ones) and when the probes were done (``perf_counter``; the analysis follows)."""

    out: Outputs
    latents: Latents | None
    probes_done: float


def evaluate_trained(
    ctx: EvalContext, test: Batches, out: Outputs, trail: ReconstructionTrail | None
) -> Evaluated:
    """Everything measured after training, in order: reconstructions, the classifier's own
    report, then the probes and the analysis of the latents."""
    if ctx.task.reconstructs:
        out.metrics.update(reconstruction(ctx, out.figs))
        if trail is not None:
            trail_figure(trail, held(ctx.splits.test, 1).images[0], out.figs)
    if ctx.task.classifies:
        classifier_report(ctx, test, out)
    spec = ctx.spec
    z = latents(ctx) if spec.probe.enabled or spec.analysis.enabled else None
    if spec.probe.enabled and z is not None:
        probes(ctx, z, out)
    probes_done = time.perf_counter()
    if spec.analysis.enabled and z is not None:
        analysis(ctx, z, out)
    return Evaluated(out, z, probes_done)


def latents(ctx: EvalContext) -> Latents:
    """The encoder's latents of the train, val and test splits, with their labels."""
    bs = ctx.spec.trainer.eval_batch_size
    z, y = {}, {}
    for name in ("train", "val", "test"):
        part = getattr(ctx.splits, name)
        if isinstance(part, StreamSet):  # one streaming pass: latents and labels together
            stream = StreamLoader(part, bs, shuffle=False, workers=ctx.spec.data.workers)
            z[name], y[name] = embed_stream(ctx.task.encoder, stream, ctx.normalizer, ctx.device)
        else:
            z[name] = embed(ctx.task.encoder, part.images, ctx.normalizer, ctx.device, bs)
            y[name] = part.labels
    return Latents(z["train"], z["val"], z["test"], y["train"], y["val"], y["test"])


def record_probe(prefix: str, result: ProbeResult, out: Outputs, title: str, log: Log) -> None:
    """A probe's accuracies and macro F1 under ``prefix``, its curves as a figure, one line."""
    for split in ("val", "test", "train"):
        out.metrics[f"{prefix}.{split}_accuracy"] = getattr(result, f"{split}_accuracy")
    out.metrics[f"{prefix}.test_macro_f1"] = result.test_report.macro_f1
    out.figs[f"{title}: training curves"] = figures.curves(result.history, title)
    took = f" in {result.seconds:.1f} s" if result.seconds is not None else ""
    log(
        f"{prefix}: val accuracy {result.val_accuracy:.4f}, "
        f"test accuracy {result.test_accuracy:.4f} ({result.epochs} epochs{took})"
    )


def per_class(report: ClassificationMetrics) -> dict:
    """summary.json's per-class scores: precision, recall, F1 and support by class name."""
    return {
        c: {"precision": p, "recall": r, "f1": f, "support": n}
        for c, p, r, f, n in zip(
            report.classes, report.precision, report.recall, report.f1, report.support, strict=True
        )
    }


def reconstruction(ctx: EvalContext, figs: dict) -> dict:
    """Test reconstruction errors, and the grid of originals above their reconstructions."""
    bs, test = ctx.spec.trainer.eval_batch_size, ctx.splits.test
    if isinstance(test, StreamSet):  # the errors over every image, one batch at a time
        m = streamed_reconstruction_metrics(
            ctx.task.model, StreamLoader(test, bs, shuffle=False, workers=ctx.spec.data.workers),
            ctx.normalizer, ctx.device,
        )  # fmt: skip
        images = held(test, ctx.spec.report.n_reconstructions).images
        recon = reconstruct(ctx.task.model, images, ctx.normalizer, ctx.device, bs)
    else:
        images = test.images
        recon = reconstruct(ctx.task.model, images, ctx.normalizer, ctx.device, bs)
        m = reconstruction_metrics(recon, images)
    n = ctx.spec.report.n_reconstructions
    rows, labels = [images[:n].float() / 255], ["original"]
    if hasattr(ctx.task.model, "masked_input"):  # MAE: what the encoder was shown
        rows.append(masked_inputs(ctx, images[:n]))
        labels.append("masked input")
    figs["reconstructions (test images: originals above, reconstructions below)"] = (
        figures.image_grid([*rows, recon[:n].cpu()], [*labels, "reconstructed"])
    )
    return {"test.mae": m.mae, "test.mse": m.mse, "test.psnr": m.psnr}


@torch.inference_mode()
def masked_inputs(ctx: EvalContext, images: torch.Tensor) -> torch.Tensor:
    """A masking model's inputs in [0, 1] with the hidden patches grey (black would vanish
    into MNIST's background): the same fixed draw as its reconstructions (its evaluation
    replays one seeded mask stream, so two calls hide the same patches)."""
    model = ctx.task.model
    was_training = model.training
    model.eval()
    try:
        x = ctx.normalizer(images.to(ctx.device))
        shown = ctx.normalizer.invert(model.masked_input(x)).clamp(0, 1)  # type: ignore[operator]
        visible = model.masked_input(torch.ones_like(x))  # type: ignore[operator]
        return torch.where(visible > 0.5, shown, torch.full_like(shown, 0.5)).cpu()
    finally:
        model.train(was_training)


def trail_figure(trail: ReconstructionTrail, original: torch.Tensor, figs: dict) -> None:
    epochs, images = trail.columns()
    if epochs:
        figs["one test image reconstructed after each epoch"] = figures.image_grid(
            [original[None].float() / 255, images],
            ["original", "epochs " + ", ".join(map(str, epochs))],
        )


def classifier_report(ctx: EvalContext, test: Batches, out: Outputs) -> None:
    """Per-class precision, recall and F1 of the trained classifier itself on the test set."""
    classes = ctx.splits.test.classes
    report = classification_report(*predictions(ctx.task.model, test), classes)
    out.per_class = per_class(report)
    out.metrics["test.macro_f1"] = report.macro_f1
    out.figs["confusion matrix of the classifier (test)"] = figures.confusion(
        report.confusion, classes
    )


def linear_probes(ctx: EvalContext, z: Latents, out: Outputs) -> None:
    """``probe.linear`` on the latents and ``probe.pixels`` on the raw pixels of the same
    rows: one affine map each, trained like the MLP probe."""
    spec, classes = ctx.spec.probe, ctx.splits.train.classes
    linear = Component(name="linear_head")
    spaces = [("linear_probe", z, "linear probe on frozen latents")] if spec.linear else []
    if spec.pixels and has_pixels(ctx):
        pixels = pixel_latents(ctx.splits, z)
        spaces.append(("image.linear_probe", pixels, "linear probe on the pixels"))
    for prefix, space, title in spaces:
        result = train_probe(
            space, linear, spec.trainer, len(classes), ctx.device, ctx.spec.seed, classes
        )
        record_probe(prefix, result, out, title, ctx.log)


def has_pixels(ctx: EvalContext) -> bool:
    """Whether the pixels' probes can run: not on streamed splits, whose pixels would take
    the memory streaming exists to spare (said in the log)."""
    streamed = [
        n for n in ("train", "val", "test") if isinstance(getattr(ctx.splits, n), StreamSet)
    ]
    if not streamed:
        return True
    ctx.log(f"the pixels' probes are skipped: {' and '.join(streamed)} streamed")
    return False


def pixel_latents(splits: Splits, z: Latents) -> Latents:
    """The raw pixels of the rows ``z`` holds, as latents a probe can read."""
    assert isinstance(splits.train, ImageSet), "pixels of a streamed split: see has_pixels"
    flat = {n: held(getattr(splits, n)).images.flatten(1).float() for n in ("train", "val", "test")}
    # pixels constant over the train split (MNIST's border) carry nothing, and z-scoring
    # them would blow up the rare test image that has ink there
    used = flat["train"].std(0) > 0
    return Latents(
        **{n: x[:, used] for n, x in flat.items()},
        y_train=z.y_train,
        y_val=z.y_val,
        y_test=z.y_test,
    )


def probes(ctx: EvalContext, z: Latents, out: Outputs) -> None:
    """The frozen-latent probe (with per-class scores), and the fine-tuned encoder when asked."""
    spec, classes = ctx.spec, ctx.splits.train.classes
    ctx.log(
        f"probe: {spec.probe.head.name} on {len(z.train):,} frozen latents "
        f"(up to {spec.probe.trainer.epochs} epochs, batch {spec.probe.trainer.batch_size})"
    )
    start = time.perf_counter()
    probe = train_probe(
        z, spec.probe.head, spec.probe.trainer, len(classes), ctx.device, spec.seed, classes
    )
    probe.seconds = time.perf_counter() - start
    record_probe("probe", probe, out, "probe on frozen latents", ctx.log)
    linear_probes(ctx, z, out)
    label_efficiency(ctx, z, out)
    out.per_class = out.per_class or per_class(probe.test_report)
    out.figs["confusion matrix of the probe (test)"] = figures.confusion(
        probe.test_report.confusion, classes
    )
    if spec.probe.finetune:
        finetune(ctx, out)


def label_efficiency(ctx: EvalContext, z: Latents, out: Outputs) -> None:
    """``probe.shots``: the logistic and kNN curves of the latents (and of the pixels with
    ``probe.pixels`` or the analysis' image space) on the same seeded draws, the full-label
    linear probe as the last point; means, spreads and areas in the metrics, every draw in
    ``out.curves``, one chart."""
    spec = ctx.spec.probe
    if not spec.shots:
        return
    # the pixels' curve, the floor every encoder's is read against, wherever the run scores
    # the pixels at all (their linear probe, or the image space of the analysis)
    pixels = spec.pixels or (ctx.spec.analysis.enabled and ctx.spec.analysis.image_space)
    pixels = pixels and has_pixels(ctx)
    spaces = [("", z)] + ([("image.", pixel_latents(ctx.splits, z))] if pixels else [])
    k = ctx.spec.analysis.knn_k
    curves: dict = {"shots": list(spec.shots), "draws": spec.draws, "seed": ctx.spec.seed}
    drawn = {}
    for prefix, space in spaces:
        c = label_curves(
            space.train,
            space.y_train,
            space.test,
            space.y_test,
            spec.shots,
            spec.draws,
            ctx.spec.seed,
            k,
        )
        c.linear.full = out.metrics.get(f"{prefix}linear_probe.test_accuracy")
        drawn[prefix] = c
        for name, curve in (("linear", c.linear), ("knn", c.knn)):
            key = f"{prefix}shots.{name}"
            for shot in curve.shots:
                out.metrics[f"{key}.k{shot}"] = curve.mean(shot)
                out.metrics[f"{key}.k{shot}_std"] = curve.std(shot)
            out.metrics[f"{key}.auc"] = curve.auc()
            curves[f"{prefix}{name}"] = {str(s): v for s, v in curve.draws.items()}
            curves[f"{prefix}{name}.full"] = curve.full
        for note in c.notes:
            ctx.log(f"label efficiency: {note}")
        ctx.log(
            f"label efficiency{' of the pixels' if prefix else ''}: "
            f"linear {c.linear.mean(spec.shots[0]):.3f} at {spec.shots[0]} and "
            f"{c.linear.mean(spec.shots[-1]):.3f} at {spec.shots[-1]} labels per class, "
            f"area {c.linear.auc():.3f} ({c.seconds:.1f} s)"
        )
    out.curves = curves
    out.figs["label efficiency: test accuracy against labels per class"] = figures.label_curves(
        {"latents": drawn[""]} | ({"pixels": drawn["image."]} if "image." in drawn else {}),
        len(z.y_train) / max(len(ctx.splits.train.classes), 1),
    )


def finetune(ctx: EvalContext, out: Outputs) -> None:
    """The encoder fine-tuned together with the probe's head on the labelled train split."""
    spec, classes = ctx.spec, ctx.splits.train.classes
    ft = spec.probe.finetune_trainer
    split_loaders = loaders(
        spec,
        ctx.splits,
        ctx.normalizer,
        ctx.device,
        ft.batch_size,
        ft.eval_batch_size,
        labelled=True,
    )
    tuned = finetune_probe(
        ctx.task.encoder,
        spec.probe.head,
        ft,
        dict(zip(("train", "val", "test"), split_loaders, strict=True)),
        len(classes),
        ctx.device,
        spec.seed,
        classes,
    )
    record_probe("finetune", tuned, out, "encoder fine-tuned with the head", ctx.log)


def analysis(ctx: EvalContext, z: Latents, out: Outputs) -> None:
    """Separability, PCA, t-SNE maps and the latent figures of the test latents; of a seeded
    sample of them when the test split streams (its first images: the pack shuffled it)."""
    test, z_test = analysed_test(ctx, z)
    z_initial = initial_latents(ctx, test) if z_test.shape[1] == 2 else None
    result = analyse(
        test,
        z_test,
        ctx.spec.analysis,
        getattr(ctx.task.model, "decoder", None),
        ctx.normalizer,
        ctx.spec.seed,
        z_initial,
        prior=ctx.task.has_prior,
        cache=cache_dir() / ANALYSIS_CACHE,
    )
    for space in result.spaces:
        key = SPACES[space.name]
        out.metrics[f"{key}.knn_accuracy"] = space.scores.knn_accuracy
        out.metrics[f"{key}.silhouette"] = space.scores.silhouette
        if space.scores.trustworthiness is not None:
            out.metrics[f"{key}.tsne_trustworthiness"] = space.scores.trustworthiness
        if space.scores.effective_rank is not None:
            out.metrics[f"{key}.effective_rank"] = space.scores.effective_rank
    out.metrics["latent.pca_components_95"] = result.pca.components_for(0.95)
    out.metrics["latent.pca_components_99"] = result.pca.components_for(0.99)
    out.figs.update(analysis_figures(result, test.classes))
    out.maps = tsne_points(result, test.classes)
    out.hover = hover_map(result, test.images, test.classes)
    ctx.log("analysis: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))


def analysed_test(ctx: EvalContext, z: Latents) -> tuple[ImageSet, torch.Tensor]:
    """The test images the analysis maps and their latents: all of a held test split, the
    first ``prepare.SAMPLE`` of a streamed one (embedded again: the full pass's order is the
    workers' interleaving)."""
    test = ctx.splits.test
    if isinstance(test, ImageSet):
        return test, z.test
    sample = held(test)
    ctx.log(f"analysis on a sample of the streamed test split: its first {len(sample):,} images")
    bs = ctx.spec.trainer.eval_batch_size
    return sample, embed(ctx.task.encoder, sample.images, ctx.normalizer, ctx.device, bs)


def initial_latents(ctx: EvalContext, test: ImageSet) -> torch.Tensor:
    """The untrained encoder's test latents: a 2-D latent is plotted before and after training."""
    with torch.random.fork_rng():  # rebuilding re-seeds; what runs next keeps its random stream
        initial = initial_task(ctx.spec, ctx.splits.train.shape, len(ctx.splits.train.classes))
    return embed(
        initial.encoder,
        test.images,
        ctx.normalizer,
        ctx.device,
        ctx.spec.trainer.eval_batch_size,
    )


def projector(ctx: EvalContext, z: Latents | None):
    """Test latents, their images and class names, for TensorBoard's embedding projector."""
    test = ctx.splits.test
    if z is None or not test.labelled or isinstance(test, StreamSet):  # no images held
        return None
    names = [test.classes[int(y)] for y in test.labels]
    return z.test, test.images, names


def run_summary(ctx: EvalContext, out: Outputs, training: dict, timings: dict) -> dict:
    """summary.json of a finished run: what ran on what, its metrics, figures' sources, times."""
    spec, splits = ctx.spec, ctx.splits
    note = reference_note(spec)
    return {
        "name": spec.name,
        "description": spec.description,
        "state": "finished",
        "data": splits.source,
        **({"data_residency": splits.residency} if splits.residency else {}),
        "device": device_name(ctx.device),
        "parameters": parameter_counts(ctx.task.model),
        # what rebuilding the model needs (replab.load), whatever the data source
        "input_shape": list(splits.train.shape),
        "num_classes": len(splits.train.classes),
        "seed": spec.seed,
        **training,
        "metrics": out.metrics,
        "per_class": out.per_class,
        # a figure measured on other data is no reference: the report says so instead
        "reference": {} if note else spec.report.reference,
        "reference_source": spec.report.reference_source,
        "reference_note": note,
        "timings": timings,
        "label_efficiency": out.curves,
        "replab_version": replab.__version__,
    }


def write_run(folder, spec: ExperimentSpec, summary: dict, out: Outputs) -> None:
    """The run folder's outputs: t-SNE map data, hover map, figures, summary.json and
    report.html."""
    figs_dir = folder / rundir.FIGURES
    if out.maps is not None:
        atomic_write_json(figs_dir / rundir.TSNE_DATA, out.maps)
    if out.hover is not None:
        atomic_write_bytes(figs_dir / rundir.HOVER_SPRITE, out.hover["sprite"])
        atomic_write_json(
            figs_dir / rundir.HOVER_DATA, {k: v for k, v in out.hover.items() if k != "sprite"}
        )
    summary["figures"] = []
    for i, (name, png) in enumerate(out.figs.items()):
        file = f"{rundir.FIGURES}/{i:02d}-{rundir.safe_name(name)[:60]}.png"
        atomic_write_bytes(folder / file, png)
        summary["figures"].append({"name": name, "file": file})
    atomic_write_json(folder / rundir.SUMMARY, summary)
    write_run_report(folder / rundir.REPORT, summary, out.figs, spec_to_yaml(spec), out.hover)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Each Parameter once (a tied decoder reuses the encoder's weights, so counts them once)."""
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
