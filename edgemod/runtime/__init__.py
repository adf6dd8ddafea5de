"""The on-device contract: what a phone runs, in Python, below every stage.

Text normalizer and tokenizer (loading and encoding), image pre-processing, the one encoder from a
raw payload to model inputs, artifact runners, golden-vector replay and the threshold decision
rule. Export, bench, golden vectors and the mobile harness all use these, so they cannot drift
apart; MediaPipe Tasks and Kotlin/Swift/JavaScript ports are checked against them.

Nothing here imports a stage (training, export, quantization, benchmarks, mobile_harness) or a
training framework at import time.
"""
