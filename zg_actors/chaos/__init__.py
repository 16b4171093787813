"""`zg chaos`: a seeded fault-injection run under a mixed load, then an audit that finds any
acknowledged thing lost.

Pure core: `schedule.py` (the seeded faults within each group's rule, then beyond it),
`audit.py` (acknowledgements against what the cluster gives back). The Ray side:
`run.py` (the load, the injector, the readback).
"""
