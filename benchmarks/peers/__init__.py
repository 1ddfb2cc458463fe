"""Peer synthesizers for the benchmark (not part of the microplex package).

Every method has the same interface: ``fit(train_df, weight_col, seed)`` returns self and
``generate(conditions_df, seed)`` returns a frame with the condition and target columns, one
row per row of ``conditions_df``. ``conditional`` says whether the method keeps the given
conditions (True) or samples whole records unconditionally (False).
"""
