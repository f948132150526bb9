"""How many instances each live revision runs: decision rules (kpa) and the loop that
acts on them (autoscaler)."""
