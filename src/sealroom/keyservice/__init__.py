"""The key service: public keys, group membership, transform keys, transforms and audit.

It can read nothing it stores: it holds no private key that decrypts, only the
augmentation secrets that make transform keys usable.
"""
