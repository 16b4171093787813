"""Inject seeded faults into a running deployment under a mixed load, then audit that no
acknowledged tx, file, blob or receipt was lost.

    ray job submit --working-dir . -- python jobs/chaos.py --config zg.yaml --seed 1

Transfers on every network, uploads, blobs and inference run while validators, storage
miners, DA nodes and compute providers are killed (Ray restarts them) or paused (SIGSTOP,
then SIGCONT) on a schedule drawn from --seed: first within each group's fault tolerance
(validators under 1/3 of the power, at most m miners with repair between, DA nodes under
1/3 of the slots, one provider), then beyond it and back. After a settle period every
acknowledgement is checked: txs committed exactly once, FINALIZED files and blobs byte-
identical, receipts paid exactly once, C0 supply, no fork, every network live. Exit 1 on
any loss.
"""

from __future__ import annotations

import sys
from typing import Any

from zg_actors.chaos.cli import add_options, run_command
from zg_actors.workload import job_parser


def parse_args(argv: list[str] | None = None) -> Any:
    parser = job_parser(__doc__)
    add_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
