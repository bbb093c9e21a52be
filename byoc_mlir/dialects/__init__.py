"""The ``byoc`` vocabulary: discardable attributes that carry partitioning state."""
