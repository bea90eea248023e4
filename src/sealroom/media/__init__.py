"""The media layer: SFrame (RFC 9605) and Sealroom's per-sender key schedule."""
