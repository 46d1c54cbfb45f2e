"""Running jobs: how the workflow's jobs run a trial, or the winner's model, and what survives a fault.

`workers` keeps warm processes that import TensorFlow once and hands each train job's trial (or
the best_model job) to one; `logs` sends a job's output, and its one-paragraph errors, to its log;
`attempts` pays for an error that would only happen again once per run, not once per retry;
`runlock` frees the lock a killed `snakemake` left; `interruptions` has the process that trains
answer SLURM's warning before a time limit, or a preemption, by saving the trial and stopping;
`job_time` sizes a cluster job's runtime from the pace of the runs finished. None of it decides
what runs: Snakemake does.
"""
