"""``eges tune``: the settings that matter, searched on a validation slice of the user's own log within a time budget
(issue 19). ``space`` says what is searched, ``halving`` how (successive halving on a wall-clock budget, with no
files), ``budget`` reads ``--budget``, and ``run`` prepares the log, runs the trials and writes the results."""
