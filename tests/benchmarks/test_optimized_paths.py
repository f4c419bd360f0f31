"""Every optimized path computes what the default path computes (issue 8: "a correctness
test for every optimized path"). No timings here: the benchmarks measure speed.

- ``channels_last``: the conv studies' real steps (A3 SimCLR ResNet-18, C1 CNN, F2 VGG-16-BN,
  E1 conv autoencoder), built from their bundled recipes at small widths, give the same loss
  and the same gradients with the model in channels_last as in the default layout. (The
  A3 ResNet is tested at width 8, its quick profile: at width 4 torch 2.14.1's CPU backward
  of the 4->8 channel 1x1 stride-2 shortcut conv in channels_last returns wrong weight
  gradients, hangs or segfaults, see benchmarks/README.md; width >= 8 is exact.)
- ``torch.compile``: compiled and eager give the same loss and gradients (slow: inductor's
  C++ code generation takes ~30 s on a shared 2-core CPU, so it runs in ``make test-slow``).
"""

from __future__ import annotations

import copy
import shutil

import pytest
import torch

from replab.recipes import load_spec
from replab.tasks import build_task

CONV_STUDIES = {
    "a3": (
        "a3-cifar10-simclr",
        ["model.encoder.width=8", "model.projection.hidden=[16]", "model.projection.out_dim=8"],
        (3, 32, 32),
    ),
    "c1": (
        "c1-cifar10-cnn",
        ["model.encoder.channels=[4,8,8]", "model.encoder.latent_dim=16"],
        (3, 32, 32),
    ),
    "e1": ("e1-fashion-autoencoder", [], (1, 28, 28)),
    "f2": (
        "f2-cifar10-triplet",
        ["model.encoder.width=0.125", "model.encoder.pool=1"],
        (3, 32, 32),
    ),
}


def _task(recipe: str, overrides: list[str], shape: tuple[int, ...]):
    torch.manual_seed(0)
    return build_task(load_spec(recipe, overrides), shape, 10)


def _loss_and_grads(
    task, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training step's loss and gradients, with the random draws (views, triplets) replayed."""
    task.train_mode()
    for m in task.model.modules():  # dropout masks follow the memory layout, so they would differ
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    torch.manual_seed(1)
    task.model.zero_grad(set_to_none=True)
    loss = task.step(x, y)["loss"]
    loss.backward()
    return loss.detach(), {
        n: p.grad.detach().clone() for n, p in task.model.named_parameters() if p.grad is not None
    }


F2_XFAIL = pytest.mark.xfail(
    strict=False,
    reason=(
        "torch 2.14.1 on CPU: VGG-16-BN "
        "(width 1/8) in channels_last gives weight gradients ~10% off the default layout's "
        "with 2 threads (0.6% with 1; "
        "the default layout agrees with itself across thread counts to 3e-6); the error enters "
        "at the input gradient of stage 3's second BatchNorm, "
        "yet the same layers alone match. Not isolated: no "
        "--channels-last for F2 on CPU (benchmarks/README.md); check on a GPU"
    ),
)


# Measured 2026-12-01 when the default suite went parallel (one thread per xdist worker):
# with 1 thread, A3's ResNet-18 in channels_last gets stem-conv weight gradients up to 1e-3
# off the default layout's (about 1% of the largest gradient); with 2 threads they agree.
A3_ONE_THREAD_XFAIL = pytest.mark.xfail(
    condition=torch.get_num_threads() == 1,
    strict=False,
    reason="torch 2.14.1 on CPU, 1 thread: ResNet-18 stem weight gradients in channels_last "
    "differ from the default layout's by up to 1e-3 (2 threads agree); --channels-last is a "
    "benchmark option only (benchmarks/README.md)",
)
MARKS = {"f2": F2_XFAIL, "a3": A3_ONE_THREAD_XFAIL}


@pytest.mark.parametrize(
    "study",
    [pytest.param(s, marks=MARKS[s]) if s in MARKS else s for s in sorted(CONV_STUDIES)],
)
def test_channels_last_step_matches_default_layout(study):
    recipe, overrides, shape = CONV_STUDIES[study]
    default = _task(recipe, overrides, shape)
    fast = copy.deepcopy(default)
    fast.model.to(memory_format=torch.channels_last)
    assert any(
        p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in fast.model.parameters()
    ), "the model did not switch layout"
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(16, *shape, generator=generator)
    y = torch.arange(16) % 4  # every class has partners: triplets can be mined
    loss, grads = _loss_and_grads(default, x, y)
    loss_cl, grads_cl = _loss_and_grads(fast, x, y)
    torch.testing.assert_close(loss_cl, loss, rtol=1e-4, atol=1e-5)
    assert grads.keys() == grads_cl.keys() and grads
    # Float sums in another order: close relative to the gradients' scale (a conv bias feeding a
    # batch norm has a true gradient of 0, so its own scale is rounding noise).
    scale = max(g.abs().max().item() for g in grads.values())
    for name in grads:
        torch.testing.assert_close(
            grads_cl[name],
            grads[name],
            rtol=1e-3,
            atol=1e-5 * scale,
            msg=lambda m, name=name: f"gradient of {name}: {m}",
        )


@pytest.mark.slow  # inductor compiles C++ for the CPU: ~30 s on 2 shared cores
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile on CPU needs a C++ compiler",
)
def test_compiled_step_matches_eager():
    eager = _task(
        "a1-mnist-autoencoder",
        ["model.encoder.hidden=[32]", "model.encoder.latent_dim=8", "model.decoder.hidden=[32]"],
        (1, 28, 28),
    )
    compiled = copy.deepcopy(eager)
    compiled.model = torch.compile(compiled.model)
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(32, dtype=torch.long)
    loss, grads = _loss_and_grads(eager, x, y)
    loss_c, grads_c = _loss_and_grads(compiled, x, y)
    torch.testing.assert_close(loss_c, loss, rtol=1e-5, atol=1e-6)
    for name in grads:
        torch.testing.assert_close(
            grads_c[name.replace("_orig_mod.", "")]
            if name in grads_c
            else grads_c["_orig_mod." + name],
            grads[name],
            rtol=1e-4,
            atol=1e-6,
        )
