"""The augmentation registry: one batched, on-device image transform per class.

A geometric augmentation has ``matrices(n, device, generator, size) -> Tensor[n, 3, 3]``
(per-image output-to-input maps in ``affine_grid``'s normalized coordinates); a colour
augmentation has ``__call__(x, generator) -> x``. ``Augment`` composes them.
"""

from replab.registry import Registry

AUGMENTATIONS = Registry("augmentation")
