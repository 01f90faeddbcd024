"""The library layer: registries, assets, device, seeds, atomic files, metrics, projections.

Nothing here knows about sweeps, reports or experiments; everything above imports from here.
"""
