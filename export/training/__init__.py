"""Training: the two trainers, the one lr schedule (:mod:`.schedule`), run records (:mod:`.records`), committed
snapshots and checkpoint loading (:mod:`.checkpoints`), and quantisation-aware training (:mod:`.qat`)."""
