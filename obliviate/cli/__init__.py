"""Click commands, thin over the Python API.

Importing the command line sets OMP_WAIT_POLICY=PASSIVE (unless a policy is set) before anything imports torch:
with OpenMP's default, each idle worker thread spins for a while after every parallel region, and on a machine
whose cores other processes use too the spinning threads take turns away from the ones with work (measured on
2 shared cores: several times slower; docs/LOG.md). PASSIVE threads sleep at once.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
