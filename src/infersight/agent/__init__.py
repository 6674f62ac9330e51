"""The agent side of infersight (methodology §7): the closed-loop workflow, serving recipes, and
the MCP tool wrappers.

The checks it relies on (A/B verification, the narrator, the KB lookup) and the profiler capture
commands live below the API in :mod:`infersight.advisor` and :mod:`infersight.kb`; this package
only wires them.
"""
