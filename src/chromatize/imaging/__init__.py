"""Imaging shared by the network pipeline and the classical methods, below both: resizing
and the guided upsampler (:mod:`.upsample`), colour marks (:mod:`.hints`) and Levin et
al.'s propagation (:mod:`.propagate`). No network, no torch needed."""
