from infersight import api

report = api.analyze(traces=["trace.json.gz"])  # nsys .sqlite, Kineto .json[.gz], or a folder of ranks
attribution = report.attribution_frame()[["device", "primary", "shares.gpu", "shares.host"]]
kernels = report.kernels_frame().head(10)  # top kernels by GPU time
categories = report.categories_frame()
findings = report.findings_frame()[["severity", "title"]]

host = api.host(traces=["trace.json.gz"])  # is the host the bottleneck? (M1-M5 verdicts)
roof = api.roofline(model="llama-3.1-8b", gpu="H100-SXM", batch=8, prompt=1024)
print(f"theory TTFT {roof.estimate.ttft_s * 1e3:.1f} ms, TPOT {roof.estimate.tpot_s * 1e3:.2f} ms")
