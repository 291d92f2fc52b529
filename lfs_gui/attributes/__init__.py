"""SANE's attribute side (Plummer et al., ECCV 2020): an attribute predictor over the embedding model's
last feature map, trained on a gallery's attribute labels with the model frozen.

* :mod:`~lfs_gui.attributes.features` — the frozen feature maps of a gallery, computed once and cached;
* :mod:`~lfs_gui.attributes.predictor` — the attribute head (attribute activation maps), its file;
* :mod:`~lfs_gui.attributes.train` — training as a generator (progress, cancel), mean average precision;
* :mod:`~lfs_gui.attributes.evaluate` — does deleting the chosen attribute's region lower the similarity
  more than deleting a random present attribute's region?

Choosing the attribute that explains a pair is :mod:`lfs_gui.explain.sane`; the attribute files are
read by :mod:`lfs_gui.data.attributes`.
"""
