def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: runs on a real one-host Slurm (make check-slurm; needs root, minutes)")
