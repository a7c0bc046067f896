//! Semantic Matching: the dynamic soft-label transform of the class embedding (DESIGN.md §5).
