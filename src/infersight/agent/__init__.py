"""The agent side of infersight (methodology §7): A/B verification, the closed-loop workflow, wrappers.

Front ends (CLI commands, the MCP server) call these functions; they never compute themselves.
"""
