"""TaskFlow open-model load generator."""
