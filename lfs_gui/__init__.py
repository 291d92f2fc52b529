"""lfs-gui: inspect image retrieval and explain it with ExplainLFS.

The package is split in a Qt-free core (``explain``, ``metrics``, ``models``, ``data``, ``index``,
``figures``, ``cli``) and one Qt subpackage (``app``) that only composes the core. Importing
``lfs_gui`` or any core module never imports PySide6.
"""

__version__ = "0.1.0"
