"""Advice checked against the evidence: findings narrated in words whose every number is checked
(``narrator``, ``claims``), and a recommendation verified by A/B runs and recorded in the
knowledge base (``verify``, ``verify_flow``); the profiler capture commands that produce the
traces (``profiling``: nsys, the torch profiler, ncu on a plan's focus kernels).

Domain code below :mod:`infersight.api`: the API, the agent workflow and the front ends call it.
"""
