"""Inference: the :class:`~chromatize.inference.pipeline.Colorizer`, the one upsampler
(:mod:`~chromatize.inference.upsample`) the one hints module
(:mod:`~chromatize.inference.hints`), and the ONNX Runtime backend
(:mod:`~chromatize.inference.onnx`)."""
