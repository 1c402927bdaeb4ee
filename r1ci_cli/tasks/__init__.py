"""Task families (SymBench, BIG-Bench-Hard, Reasoning-Gym), the registry and the 107/37 split."""
