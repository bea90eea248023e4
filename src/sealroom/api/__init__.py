"""What the key service and the SDK share: encodings and request signatures."""
