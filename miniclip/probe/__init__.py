"""Look inside a trained CLIP's embedding space (issue 10, ``miniclip probe``).

Submodules, each written from scratch and checked against a reference library in the tests:

* :mod:`miniclip.probe.maps` — PCA written out, t-SNE in NumPy, and the gap between the image
  and caption clouds.
* :mod:`miniclip.probe.topology` — subspace angles between point clouds, persistence diagrams
  (H0, H1) and the Wasserstein distance between them.
* :mod:`miniclip.probe.robustness` — Gaussian blur by hand and what it does to zero-shot accuracy
  and to the embeddings.
"""
