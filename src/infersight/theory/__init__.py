"""Theory engine (methodology §2): model config -> per-operator FLOPs/bytes -> roofline time on a GPU."""
