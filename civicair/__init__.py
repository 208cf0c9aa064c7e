"""civicair: citizen air-quality sensors in, trustworthy open data out.

The installed distribution exposes this one import name. `civicair.cli` (the root command line)
and `civicair.runtime` (the process wiring of `up`, `gateway` and `api`) sit above every package;
the packages themselves are mapped from the top-level folders of the repository (see setup.py).
"""
