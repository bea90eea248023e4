"""Sealroom: zero-trust end-to-end encryption for video meetings.

Layers (dependencies point down only):

* ``sealroom.crypto``: the PRE scheme on BLS12-381, signatures, envelopes, escrow.
* ``sealroom.cli``: the ``sealroom`` command.
"""

__version__ = "0.1.0"
