"""Tables, plots and the regression check over a sweep's results (docs/reports.md).

- `reports.build.build_report(results_path, out_dir=None, published=None)`: the `ifa-bench report` command.
- `reports.regression.check.run_check(results, published_rows, metric=..., tolerance=..., min_seeds=...)`: `ifa-bench check`.
- `reports/published.yaml`: published reference numbers with their sources; `reports/mapping.py`: how our configs
  map onto their names.
"""
