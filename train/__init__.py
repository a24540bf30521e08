"""Training: data preparation, one script per network, evaluation (`python -m train.<name>`).

Nothing here imports Qt, and dlib only inside the functions that need it, so a GPU
machine with neither can train from prepared data.
"""
