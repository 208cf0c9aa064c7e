"""Benchmarks (`civicair bench …`): tools, not product; registered into the CLI from the top."""
