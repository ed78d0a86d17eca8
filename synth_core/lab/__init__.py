"""The built-in model's laboratory: what trains and judges it, never imported when a job runs.

- ``shapes``: the procedural drawings it learns from (and their labels); ``colour_names``: what a
  person calls a colour, shared by the generator's strict labels and the eye;
- ``training``: how the model and its judge are trained (scripts/train_builtin.py);
- ``evaluate``, ``eye``, ``robustness``: drawing prompts and judging the results, with the learned
  judge and with the person-like eye (tests and benchmarks).
The runtime (``synth_core.builtin``) needs only the vocabulary, the tokenizer and the weights.
"""
