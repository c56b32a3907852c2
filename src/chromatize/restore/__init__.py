"""Repair old photos before colour: cracks, scratches, dust, grain and fading.

>>> from chromatize.restore import restore
>>> gray = restore("scan.jpg")                      # every step
>>> gray = restore(array, "cracks,dust")              # only the damage

A classical layer: it uses the leaves (``color``, ``io``) and a small network of its own
(:mod:`~chromatize.restore.net`), never the faces. See ``docs/restore.md``.
"""

from chromatize.restore.pipeline import (STEPS, Repair, parse_steps, restore, restore_photo,
                                         with_alpha)

__all__ = ["STEPS", "Repair", "parse_steps", "restore", "restore_photo", "with_alpha"]
