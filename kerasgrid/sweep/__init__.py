"""The sweep's vocabulary: what its trials are called and where their runs live.

A trial is a combination of the grid's values (its lists, ranges and choices: `space`), named by
its parameters alone (`grid`); it trains
the user's model and data functions, named in the config by reference and checked without being
imported (`refs`); each of its runs (a seed, a confirmation, a halving rung) has a folder of its
own under results/trials/ (`runs`). Every later stage speaks these terms; `kerasgrid.config`
reads a config into the sweep that uses them.
"""
