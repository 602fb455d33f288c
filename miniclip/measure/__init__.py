"""Measurement: how fast a training step runs, and what it costs.

bench.py         ``miniclip bench``: images/s, GFLOP/s against a GEMM, PyTorch beside it (lesson 07)
cost.py          FLOPs and parameters of every encoder, counted from the configuration
layer_timing.py  forward and backward time of every layer
torch_twin.py    the same model in PyTorch, weights copied, for the speed ratio
"""
