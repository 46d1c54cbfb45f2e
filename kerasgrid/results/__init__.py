"""Results: where the finished trials are ranked and the winner is picked, shown and saved.

`ranking` orders trial records (the one order every stage uses: the leaderboard, the finalists,
halving's promotions, an adaptive search's rounds); `repeats` folds a combination's seeds into one
entry, and `confirm` the finalists' confirmations into the final order. `leaderboard` writes
results/leaderboard.tsv and the winner, results/best_params.yaml; `tables` and `plots` show them;
`best_model` saves the winner's trained model, and `load_best_model` (kerasgrid.load_best_model)
loads it back. `tracking` logs the trials and the sweep to MLflow, when the config asks for it.
"""
