"""Client-Initiated Backchannel Authentication (CIBA Core 1.0)."""
