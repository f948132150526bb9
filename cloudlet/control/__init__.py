"""The deploy controller: build queue, rollout, restore after restart."""
