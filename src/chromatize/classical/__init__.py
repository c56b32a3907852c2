"""Classical guided colorization: propagation of user marks (Levin et al. 2004) and colour
transfer from a reference photo (Reinhard et al. 2001, Welsh et al. 2002)."""

from chromatize.classical.levin import levin_colorize, levin_colorize_marks, solve_levin
from chromatize.classical.transfer import reinhard_transfer, welsh_transfer

__all__ = ["levin_colorize", "levin_colorize_marks", "reinhard_transfer", "solve_levin",
           "welsh_transfer"]
