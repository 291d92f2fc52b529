"""Publication figures, Qt-free: the pair figure, the retrieval sheet, continuity, curve data export.

The desktop app's Export menu and the ``lfs-gui explain`` / ``continuity`` commands call these same
functions with the same :class:`ViewSpec`, so what the window shows is what the file holds.
matplotlib is imported lazily (inside the functions) and used through ``Figure`` +
``FigureCanvasAgg``, never pyplot, so importing this package is cheap and has no global side effects.
"""

from lfs_gui.figures.curves import DATA_SUFFIXES, curve_record, curves_record, draw_curves, load_curve_data, save_curve_data
from lfs_gui.figures.output import FIGURE_FORMATS, check_figure_suffix, read_figure_metadata
from lfs_gui.figures.pair import PairData, save_pair_figure
from lfs_gui.figures.sheet import iter_retrieval_sheet, save_retrieval_sheet
from lfs_gui.figures.spec import COLORMAPS, DPI_PRESETS, SIZE_PRESETS, Correspondence, ViewSpec

__all__ = [
    "COLORMAPS", "DATA_SUFFIXES", "DPI_PRESETS", "FIGURE_FORMATS", "SIZE_PRESETS", "Correspondence", "PairData",
    "ViewSpec", "check_figure_suffix", "curve_record", "curves_record", "draw_curves", "iter_retrieval_sheet",
    "load_curve_data", "read_figure_metadata", "save_curve_data", "save_pair_figure", "save_retrieval_sheet",
]
