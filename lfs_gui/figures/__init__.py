"""Publication figures, Qt-free: the pair figure, the retrieval sheet and curve data export.

The desktop app's Export menu and the ``lfs-gui explain`` command call these same functions.
matplotlib is imported lazily (inside the functions) and used through ``Figure`` + ``FigureCanvasAgg``,
never pyplot, so importing this package is cheap and has no global side effects.
"""

from lfs_gui.figures.curves import DATA_SUFFIXES, curve_record, draw_curve, load_curve_data, save_curve_data
from lfs_gui.figures.pair import FIGURE_FORMATS, check_figure_suffix, save_pair_figure
from lfs_gui.figures.sheet import save_retrieval_sheet

__all__ = [
    "DATA_SUFFIXES", "FIGURE_FORMATS", "check_figure_suffix", "curve_record", "draw_curve", "load_curve_data",
    "save_curve_data", "save_pair_figure", "save_retrieval_sheet",
]
