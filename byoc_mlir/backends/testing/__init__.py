"""The in-tree ``testing`` backend: partitioning without codegen."""
