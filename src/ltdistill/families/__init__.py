"""What the methods of one family share, apart from the one-file methods that use it (methods/): trajectory
matching (trajectory.py: the matching loss, trajectory sampling, the learnable pixels and lr; its student lives with
the experts it replays, experts/student.py), random-network matching (randomnet.py: DC, DM), recovery (recovery.py:
SRe2L, unilevel) and real-image initialization (init.py)."""
