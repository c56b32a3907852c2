"""Training: config schema, data, losses, colour quantisation, the trainer, its resume
state and run log."""
