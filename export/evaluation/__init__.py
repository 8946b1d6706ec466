"""Measuring models and the codec: rate-distortion sweeps, deblocking benchmarks, held-out validation, speed and
memory benchmarks, and the helpers they share (BD-rate, metrics, reports, candidate registration)."""
