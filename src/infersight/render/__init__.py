"""Renderers: terminal, Markdown and JSON views of results. No computation happens here."""
