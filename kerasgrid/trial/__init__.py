"""One trial: where a combination is built, trained on the fixed budget and recorded.

`training.run_trial` is the whole of it: it turns the user's data into endless streams of batches in
the form of the trial's Keras backend (`data`), puts the trial on its devices (`devices`),
continues a halving rung from the state the rung before
left (`resume`), saves its state every few minutes and continues a killed run from it
(`checkpoint`), optionally writes TensorBoard logs (`tensorboard_logs`), and writes params.json,
history.csv and, last, metrics.json; a trial that fails or diverges records why in a line
(`reasons`, which the results' console lines, plots and page show too). `training` imports
TensorFlow only once a trial runs, so planning and ranking a sweep never load it. `build_check`
builds models as a trial would, without training them: what `kerasgrid check` does before a sweep.
"""
