"""The Qt desktop app (PySide6). Only this subpackage imports Qt; it composes the Qt-free core.

Entry point: :func:`lfs_gui.app.main.run_app` (the ``lfs-gui`` command with no arguments).
"""
