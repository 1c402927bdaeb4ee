"""Training: sequences (ids + loss mask), sft, engines (plain torch, DeepSpeed), checkpoints, lr schedule.

Nothing here imports torch at module level except the modules that run training; ``r1ci --help`` stays light.
"""
