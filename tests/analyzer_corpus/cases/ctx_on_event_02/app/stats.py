STATS: dict[str, int] = {"requests": 0}
