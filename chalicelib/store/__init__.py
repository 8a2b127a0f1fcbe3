"""Persistence: PynamoDB models and table set-up, in one place."""
