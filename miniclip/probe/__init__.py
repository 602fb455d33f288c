"""Look inside a trained CLIP's embedding space (issue 10, ``miniclip probe``).

Submodules, each written from scratch and checked against a reference library in the tests:

* :mod:`miniclip.probe.maps` — PCA written out, t-SNE in NumPy, and the gap between the image
  and caption clouds.
* :mod:`miniclip.probe.topology` — cosine distances, persistence diagrams (H0, H1) and the
  Wasserstein distance between them.
* :mod:`miniclip.probe.robustness` — Gaussian blur by hand, subspace angles between classes (and
  between a class's clean and blurred images), and what blur does to zero-shot accuracy.

Not built yet: the figures, lessons 11–12 and the ``miniclip probe`` command that ties these
together on a trained run.
"""
