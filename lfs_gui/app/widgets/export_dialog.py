"""The figure export dialog: size and resolution presets (the CLI's ``--size`` / ``--dpi``).

Journal columns: single = 3.5 in, double = 7.16 in, or a custom width; 150 / 300 / 600 DPI or a
custom value. The dialog shows the resulting PNG width in pixels and remembers the last choice. Its
:meth:`FigureExportOptions.options` go to :func:`lfs_gui.app.export.view_spec` together with what the
window shows (colormap, opacity, mask view), so the file is the window's view at print quality.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

from lfs_gui.figures.spec import DPI_PRESETS, MAX_DPI, MIN_DPI, SIZE_PRESETS

SIZE_LABELS = {"single": "single column (3.5 in)", "double": "double column (7.16 in)"}


class FigureExportOptions(QDialog):
    """Size preset or custom width, DPI preset or custom value; ``options()`` -> ``{"size", "dpi"}``."""

    def __init__(self, parent: QWidget | None = None, settings: Any = None, what: str = "figure") -> None:
        super().__init__(parent)
        self.setObjectName("figureExportOptions")
        self.setWindowTitle(f"Export the {what}")
        self._settings = settings
        self.size = QComboBox(objectName="exportSize")
        for key in SIZE_PRESETS:
            self.size.addItem(SIZE_LABELS.get(key, key), key)
        self.size.addItem("custom width", "custom")
        self.width = QDoubleSpinBox(objectName="exportWidth", minimum=1.5, maximum=20.0, decimals=2, singleStep=0.1,
                                    suffix=" in", value=5.0)
        self.dpi = QComboBox(objectName="exportDpi")
        for name, value in DPI_PRESETS.items():
            self.dpi.addItem(f"{value} DPI ({name})", value)
        self.dpi.addItem("custom", "custom")
        self.customDpi = QSpinBox(objectName="exportCustomDpi", minimum=MIN_DPI, maximum=MAX_DPI, value=300, singleStep=50)
        self.pixels = QLabel(objectName="exportPixels")
        form = QFormLayout(self)
        form.addRow("width", self.size)
        form.addRow("custom width", self.width)
        form.addRow("resolution", self.dpi)
        form.addRow("custom DPI", self.customDpi)
        form.addRow("PNG width", self.pixels)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        for sig in (self.size.currentIndexChanged, self.width.valueChanged, self.dpi.currentIndexChanged,
                    self.customDpi.valueChanged):
            sig.connect(self._refresh)
        self._restore()
        self._refresh()

    def set_size(self, size: str | float) -> None:
        if isinstance(size, str) and size in SIZE_PRESETS:
            self.size.setCurrentIndex(self.size.findData(size))
        else:
            self.size.setCurrentIndex(self.size.findData("custom"))
            self.width.setValue(float(size))

    def set_dpi(self, dpi: int) -> None:
        i = self.dpi.findData(int(dpi))
        if i < 0:
            self.dpi.setCurrentIndex(self.dpi.findData("custom"))
            self.customDpi.setValue(int(dpi))
        else:
            self.dpi.setCurrentIndex(i)

    def options(self) -> dict[str, Any]:
        """``{"size": "single"|"double"|inches, "dpi": int}`` for :class:`~lfs_gui.figures.ViewSpec`."""
        size = self.size.currentData()
        dpi = self.dpi.currentData()
        return {"size": float(self.width.value()) if size == "custom" else size,
                "dpi": int(self.customDpi.value()) if dpi == "custom" else int(dpi)}

    def _refresh(self, *_: Any) -> None:
        self.width.setEnabled(self.size.currentData() == "custom")
        self.customDpi.setEnabled(self.dpi.currentData() == "custom")
        o = self.options()
        inches = SIZE_PRESETS.get(o["size"], o["size"]) if isinstance(o["size"], str) else o["size"]
        self.pixels.setText(f"{round(float(inches) * o['dpi'])} px (SVG/PDF: vector, photos at this resolution)")

    def _restore(self) -> None:
        if self._settings is None:
            self.set_size("double")
            self.set_dpi(DPI_PRESETS["print"])
            return
        size = str(self._settings.value("export/size", "double"))
        try:
            self.set_size(size if size in SIZE_PRESETS else float(size))
            self.set_dpi(int(self._settings.value("export/dpi", DPI_PRESETS["print"])))
        except (TypeError, ValueError):
            self.set_size("double")
            self.set_dpi(DPI_PRESETS["print"])

    def _accept(self) -> None:
        if self._settings is not None:
            o = self.options()
            self._settings.setValue("export/size", str(o["size"]))
            self._settings.setValue("export/dpi", int(o["dpi"]))
        self.accept()
