"""Early exit: the exit policies (`policies`), the threshold sweep and operating point on stored
logits (`offline`), real early exit on a model (`online`), saturation and effective depth
(`saturation`)."""
