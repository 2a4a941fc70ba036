"""``distil experiment``: does distilling help on this data? A grid of runs, scored on one test split."""
