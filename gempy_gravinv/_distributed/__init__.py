"""Scale-out with ``torch.distributed``: process groups and a station-sharded gravity operator.

Launch with ``torchrun`` (which SLURM or Kubernetes launch in turn): every process
(*rank*) runs the same program; :func:`init_distributed` joins them into one process
group (gloo on CPUs, NCCL on GPUs) from the environment ``torchrun`` or ``srun`` sets.
One process is the default and needs nothing: every helper is then a no-op.

- :mod:`._group`: rank / world size from the environment, the process group, collectives.
- :mod:`._sharded`: :class:`ShardedGravityOperator`, the stations split across ranks.
- :mod:`._plan`: operator memory per rank for a given world size, and the refusal.

Units: density contrast kg/m³; g_z mGal, positive downward.
"""

from ._group import (
    DistEnv,
    all_gather_objects,
    all_reduce_gradients,
    all_reduce_sum,
    any_rank,
    barrier,
    check_same_on_ranks,
    env_info,
    fingerprint,
    gather_blocks,
    init_distributed,
    is_main,
    launched_processes,
    main_rank_logging,
    rank,
    rank_device,
    run_on_all,
    shutdown_distributed,
    split_counts,
    world_size,
)
from ._plan import RankMemoryPlan, check_rank_memory, estimate_rank_memory
from ._sharded import ShardedGravityOperator

__all__ = ["DistEnv", "RankMemoryPlan", "ShardedGravityOperator", "all_gather_objects", "all_reduce_gradients",
           "all_reduce_sum", "any_rank", "barrier", "check_rank_memory", "check_same_on_ranks", "env_info",
           "estimate_rank_memory", "fingerprint", "gather_blocks", "init_distributed", "is_main", "launched_processes",
           "main_rank_logging", "rank",
           "rank_device", "run_on_all", "shutdown_distributed", "split_counts", "world_size"]
