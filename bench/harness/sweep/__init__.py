"""The sweep: tune on a world's tuning images, evaluate the chosen hyperparameters on its test
images, then tabulate and plot (config.py -> plan.py -> run.py; cli.py is ``python -m bench.sweep``)."""
