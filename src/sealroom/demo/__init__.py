"""Demos: the full encrypted meeting (``sealroom demo``) and the first PRE unwrap demo."""
