"""Evaluation: what a trained run can do, measured, and used.

zeroshot.py             classify by the caption that fits best, prompt ensembles (lesson 10)
retrieval.py            recall@k both ways, plain and class-aware (lesson 10)
linear_probe.py         softmax regression on frozen features: CLIP's yardstick (``eval --linear-probe``)
ensemble.py             several runs' class probabilities averaged (lesson 14)
compare.py              learning curves and the efficiency ratio (lesson 13)
trained_run.py          a run read back: model, normalisation, its dataset's test split
report.py               ``miniclip eval``: all of the above for one run, in numbers and plots
classify_and_search.py  ``miniclip classify`` and ``miniclip search`` on your own images and words
inputs.py               the one check of class labels (before the device) and of point clouds
"""
