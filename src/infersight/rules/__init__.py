"""Rules: data-driven thresholds and advice that turn analysis results into findings."""
