"""Training data from ``../shared/data/train`` only: crops, held-out splits, JPEG degradation (:mod:`.crops`)."""
