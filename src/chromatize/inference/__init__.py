"""Inference: the :class:`~chromatize.inference.pipeline.Colorizer` (prepare, infer,
finish), colour marks on a network's colours (:mod:`.steer`), versions from an index of
colour photos (:mod:`.variants`), and the ONNX Runtime backend (:mod:`.onnx`). The imaging
it shares with the classical methods lives below it, in :mod:`chromatize.imaging`."""
