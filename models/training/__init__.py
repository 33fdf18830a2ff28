"""Training kit for the MultiHeadServe demo models.

The kit generates synthetic data, trains the ``shapes`` and ``ranking`` demo models with a
choice of multi-task loss strategies, exports them to ONNX, writes the ``reference.json``
files the service's tests compare against, and writes the reports. Everything is seeded, so
rerunning ``python3 -m training.run_all`` from ``models/`` reproduces the committed files.
"""

import os

# PyTorch's OpenMP threads spin while waiting for work by default. On a machine whose cores
# are shared with other jobs a spinning thread steals the core its partner needs, and small
# tensor operations become 10-20x slower. Passive waiting avoids that; it has to be set
# before torch (and with it libgomp) is imported, which is why it lives here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
