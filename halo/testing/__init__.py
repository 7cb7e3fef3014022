"""Testing tools for halo: the differential fuzzer lives in `halo.testing.fuzz`."""
