"""From checkpoints to shipped files: ONNX export, int8 quantisation, weight averaging, test stand-ins."""
