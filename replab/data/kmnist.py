"""Kuzushiji-MNIST: 70,000 28x28 cursive Japanese characters in 10 classes (Clanuwat et al.,
2018, arXiv:1812.01718), published as MNIST-style IDX files under CC BY-SA 4.0.

A drop-in harder MNIST for the same encoders: the layout, reader and download are MNIST's
(``IDXSource``); only the names, mirror and checksums differ.
"""

from __future__ import annotations

from replab.data.base import Resource
from replab.data.mnist import IDXSource
from replab.data.registry import DATASETS


@DATASETS.register("kmnist")
class KMNIST(IDXSource):
    name = "kmnist"
    title = "Kuzushiji-MNIST"
    folder = "KMNIST"  # torchvision's folder name, so its downloads are found too
    classes = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    shape = (1, 28, 28)
    mirrors = ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)
    resources = (
        Resource("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
        Resource("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
        Resource("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
        Resource("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
    )
