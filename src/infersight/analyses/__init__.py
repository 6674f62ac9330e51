"""Analyses: pure functions over the trace model returning typed results; nothing prints here."""
