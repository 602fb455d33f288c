"""Training: the loop behind ``miniclip train``, its named configurations and its checkpoints.

    loop.py        one step and the loop over epochs, top to bottom (lesson 09)
    configs.py     TrainConfig and the named configurations (cpu, gpu, shapes, tiny)
    checkpoint.py  one ``checkpoint.npz`` of plain arrays and JSON, never a pickle
    resume.py      what may differ when a run is resumed, checked once (lesson 09)
    rollback.py    an interrupted step rolled back before the checkpoint is saved

This package's face imports nothing, so the command line can read the configurations
(``configs.py`` is standard library only) without loading the trainer.
"""
