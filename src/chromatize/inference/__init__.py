"""Inference: the :class:`~chromatize.inference.pipeline.Colorizer`, the one upsampler
(:mod:`~chromatize.inference.upsample`) and the one hints module
(:mod:`~chromatize.inference.hints`)."""
