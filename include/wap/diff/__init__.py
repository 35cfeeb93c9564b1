"""The audit's diff of the write schema against production, run inside the warehouse."""
