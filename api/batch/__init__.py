"""KernelBench batches: a suite x samples x models, each sample one generation run, resumable after a kill."""
