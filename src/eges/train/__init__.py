"""The trainer of every method: skip-gram with negative sampling on walks, the item's own row only (BGE) or with
side-information rows (GES, EGES).

- ``kernels``: the compiled numba kernels (model arrays and hyper-parameters passed as two named tuples);
- ``stream``: training over streamed walks, the epochs rule and the learning-rate schedule;
- ``negatives``: the negative table, down-sampling keep probabilities and side rows' step scales;
- ``gensim_ref``: gensim's Word2Vec, the reference backend (``train.backend = "gensim"``, BGE only).
"""
