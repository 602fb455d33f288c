"""Training on many processes: the world of ranks, CLIP's sharded contrastive loss, data parallelism.

``world.py`` (the collective operations), ``sharded_loss.py`` (all-gather, local loss, the
gather's backward), ``data_parallel.py`` (a model's part on one rank, its slice of a batch, the
gradients summed). Lesson 17 derives them.
"""
