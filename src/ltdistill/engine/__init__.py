"""The engine the methods run on: method.py (the Method protocol every method follows: config validation at the
boundary, the scale protocol, seeding and timing) and loop.py (learnable tensors and their optimizers, the NaN
guard, resumable checkpoints, snapshots). Methods own the math; the engine owns the loop. Below it: keys.py
(fingerprints), safe_io.py (atomic writes), synthetic.py (the artifact)."""
