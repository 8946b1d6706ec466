"""Training and export tooling for the BlockCNN JPEG-deblocking model.

Not part of the runtime package (``pillow_blockcnn``): this package trains on CPU, exports a single-file
ONNX model and evaluates it on LIVE1 / Classic5. Run its modules from the repository root, e.g.
``python -m export.train --config export/configs/deblock_v1.json``.
"""
