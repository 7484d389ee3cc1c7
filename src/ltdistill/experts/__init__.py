"""Expert trajectories: the buffer (buffer.py) and their training (train.py)."""
