"""One-command evaluation of a pretrained encoder: every GLUE task of the AMOS paper's table
(and SQuAD 2.0), over seeds, into one results row, a plot and a GLUE server submission.

`runner.run(plan)` does it all; amos_jax/benchmark.py is its command line.
"""
