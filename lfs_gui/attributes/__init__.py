"""SANE's attribute side (Plummer et al., ECCV 2020): an attribute predictor over the embedding model's
last feature map, trained on a gallery's attribute labels with the model frozen.

* :mod:`~lfs_gui.attributes.features` — the frozen feature maps of a gallery, computed once and cached;
* :mod:`~lfs_gui.attributes.predictor` — the attribute head (attribute activation maps), its file;
* :mod:`~lfs_gui.attributes.train` — training as a generator (progress, cancel), mean average precision;
* :mod:`~lfs_gui.attributes.sane` — choosing the attribute that explains a pair (SANE's explanation);
* :mod:`~lfs_gui.attributes.evaluate` — does deleting the chosen attribute's region lower the similarity
  more than deleting a random present attribute's region?
* :mod:`~lfs_gui.attributes.index_attributes` — an index's predictor file and labels (CLI and app).

The attribute files are read by :mod:`lfs_gui.data.attributes`. This package uses ``lfs_gui.explain``
(saliency maps, resampling), never the reverse.
"""
