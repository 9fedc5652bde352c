"""Remote commands: parsing, signatures, rate limits, hostile clients."""
