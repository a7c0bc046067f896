//! Optimal-transport pieces of DMGD (DESIGN.md §6): unit-sphere cost, k-means support points, Sinkhorn with gradients.
