"""Training, export and evaluation tooling for pillow-blockcnn's models (never imported by the package).

Grouped as BasicSR/KAIR group training code: :mod:`export.networks` (torch networks), :mod:`export.data`
(training crops), :mod:`export.training` (trainers, schedule, checkpoints, QAT), :mod:`export.conversion` (ONNX
export, quantisation), :mod:`export.evaluation` (benchmarks and their helpers) and :mod:`export.studies`
(one-off studies). Configs live in ``export/configs/<task>/``. Run modules from the repository root, e.g.
``python -m export.training.train_deblocker --config export/configs/deblock/deblock_v1.json``.
"""
