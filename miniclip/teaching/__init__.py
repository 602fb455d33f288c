"""Teaching: the walkthrough that can be checked with a pencil, and the proof of every derivative.

walkthrough.py        ``miniclip walkthrough``: the 3-pair example, every number printed (lesson 01)
walkthrough_model.py  its model: lookup, patches, linear + ReLU, mean pooling, projection (lessons 01–03)
gradcheck.py          central finite differences in float64 against a random upstream gradient (lesson 02)
gradient_cases/       the cases ``miniclip gradcheck`` runs: every layer, encoder and loss
"""
