"""What every command shares, below the trainers and the tools: the device, the one-line user
errors and how a stopped run exits, checkpoint files, and rebuilding a network from a checkpoint."""
