"""The crypto core: pairing layer, PRE (transform cryptography), envelopes and escrow.

Nothing here does I/O or imports from the services or the SDK.
"""
