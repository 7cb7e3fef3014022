"""Example pipelines shipped with halo (used by `halo demo` and the benchmarks)."""
