"""Evaluation statistics: pure functions over Polars frames and NumPy arrays.

No I/O and no hidden randomness (the bootstrap takes a seed):

* ``metrics``: trajectory summaries, group metrics, pass@k, pass^k, Wilson, IQM;
* ``bootstrap``: the stratified bootstrap and rliable's interval estimates,
  pass@k curves, performance profiles and probability of improvement;
* ``compare``: tests, effect sizes, corrections, verdicts, the experiment-log
  table (re-exports ``power``);
* ``power``: power and sample size for two success rates;
* ``markdown``: escaping and number formats for the Markdown exports;
* ``runs``: comparisons of per-run results of any metric (the experiment log);
* ``clustered``: intervals that state their population (task-clustered, stratified);
* ``variance``: variance components, ICC, design effect, flip rate, the planner;
* ``cost``: dollar cost per success with intervals, the cost–success frontier;
* ``reliability``: outcome and resource consistency across epochs;
* ``infrastructure``: the one rule for infrastructure failures;
* ``leader``: who leads, as the paired tests say;
* ``_kernels``: private fast kernels behind ``compare`` (exact tests, resamples).

Every number is defined in ``docs/metrics.md``.
"""
