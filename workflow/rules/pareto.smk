# With several objectives: the Pareto front the leaderboard ranks first, as a table and a figure.

localrules: pareto, pareto_plot


rule pareto:
    input:
        leaderboard="results/leaderboard.tsv",
    output:
        front=report("results/pareto.tsv", caption="../report/pareto.rst", category="Leaderboard"),
    log:
        "logs/pareto.log",
    retries: 0  # files already here: a failure would only happen again
    script:
        "../../scripts/pareto.py"


rule pareto_plot:
    input:
        leaderboard="results/leaderboard.tsv",
    output:
        plot=report("results/plots/pareto.png", caption="../report/pareto_plot.rst", category="Plots"),
    log:
        "logs/pareto_plot.log",
    retries: 0  # as pareto
    params:
        objective=ranking_objective,
    script:
        "../../scripts/pareto_plot.py"
