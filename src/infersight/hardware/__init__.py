"""What the hardware is: GPU specs (peaks, bandwidths, aliases, and which links each GPU has;
data/gpu_specs.toml) and the link figures between and to GPUs (data/interconnects.toml).

Why a package of its own, on a low floor: the theory engine, the copy/communication analyses,
the ncu roofline and the knowledge base's fingerprint all need GPU knowledge; with the specs in
``theory/`` and the links in ``overlap/``, analyses and theory imported each other's floors.
"""
