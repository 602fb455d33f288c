"""``miniclip probe``: look inside a trained CLIP's embedding space (lessons 11 and 12).

    embeddings.py  the run's test images, class captions and prompt ensembles, clean and blurred
    maps.py        PCA written out, t-SNE in NumPy, the gap between the image and caption clouds
    topology.py    cosine distances, persistence diagrams (H0, H1), the Wasserstein distance
    robustness.py  Gaussian blur by hand, subspace angles between classes, clean and blurred
    figures.py     the probe's own plots: maps, curves against σ, persistence diagrams
    report.py      the command: measure everything, then write the figures and a summary

Each is written from scratch and checked against a reference library in the tests (scikit-learn,
SciPy, ripser, persim).
"""
