"""Small option dialogs for the long jobs started from the File menu (the CLI has every flag)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget,
)

PERTURBATIONS = ("noise", "fill", "uniform", "blur")


class _OptionsDialog(QDialog):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.form = QFormLayout(self)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def finish(self) -> None:
        self.form.addRow(self.buttons)


class EvaluationOptions(_OptionsDialog):
    """Pairs of each type, perturbations, RISE masks (``lfs-gui evaluate`` has the same settings)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Evaluate the explainers", parent)
        self.setObjectName("evaluationOptions")
        self.pairs = QSpinBox(objectName="evalPairs", minimum=1, maximum=500, value=10)
        self.pairs.setToolTip("similar and dissimilar pairs sampled each (seeded)")
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        self.perturbations = {}
        for name in PERTURBATIONS:
            box = QCheckBox(name, objectName=f"evalPerturbation_{name}")
            box.setChecked(name in ("noise", "fill"))
            lay.addWidget(box)
            self.perturbations[name] = box
        self.masks = QSpinBox(objectName="evalRiseMasks", minimum=10, maximum=5000, value=100, singleStep=50)
        self.masks.setToolTip("rise-sim masks per image (its default, 500, takes ~20 s per pair on a CPU)")
        self.form.addRow("pairs of each type", self.pairs)
        self.form.addRow("perturbations", row)
        self.form.addRow("rise-sim masks", self.masks)
        self.finish()

    def options(self) -> dict[str, Any]:
        perts = tuple(n for n, b in self.perturbations.items() if b.isChecked()) or ("noise",)
        return {"pairs": self.pairs.value(), "perturbations": perts,
                "method_settings": {"rise-sim": {"n_masks": self.masks.value()}}}


class IndexOptions(_OptionsDialog):
    """Split (for CUB / Cars layouts) and the kind of decoder trained with the index."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Index a gallery", parent)
        self.setObjectName("indexOptions")
        self.split = QComboBox(objectName="indexSplit")
        self.split.addItem("default (CUB/Cars: the metric-learning test half; folders: all)", None)
        for s in ("test", "train", "all", "official-test", "official-train"):
            self.split.addItem(s, s)
        self.decoder = QComboBox(objectName="indexDecoder")
        self.decoder.addItem("dense 40 px (the paper's)", "dense")
        self.decoder.addItem("convolutional 64 px", "conv")
        self.form.addRow("split", self.split)
        self.form.addRow("decoder", self.decoder)
        self.finish()

    def options(self) -> dict[str, Any]:
        return {"split": self.split.currentData(), "decoder_kind": self.decoder.currentData()}
