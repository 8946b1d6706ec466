"""Network definitions: the deblocker (:mod:`.deblocker`) and the block predictor (:mod:`.predictor`)."""
